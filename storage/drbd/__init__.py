"""The drbd disk template: each disk mirrored between two nodes by the DRBD kernel module (8.4 or 9).

Every disk has, on each of its two nodes, a data volume of the disk's size and a 128 MiB
volume for DRBD's external meta data (enough for about 4 TiB of data). Where those volumes
come from is a :class:`Backing`: sparse files (optionally on loop devices) or anything that
can make, find, grow and remove a named block device: the plain template's LVM volumes
(:func:`lvm_backing`, the cluster's default: ``<uuid>.disk`` is the same volume a plain disk
has, so converting between plain and drbd keeps the data where it is, and ``<uuid>.meta``).
``disk["logical_id"]`` (made by the master from genet.drbd_pool) names the pair:
``{"nodes": [a, b], "addresses": [ip_a, ip_b], "port": p, "minors": [ma, mb], "secret": s}``;
index *i* of each list belongs to ``nodes[i]``, and in DRBD 9 that index is also the node-id.

genet drives the kernel with drbdsetup and drbdmeta directly, as Ganeti does, so no state of
its own sits between the config and the kernel; the commands are exactly those drbdadm
would run for the resource file genet writes (ROOT/var/lib/genet/drbd/RESOURCE.res, never
/etc/drbd.d), and the unit tests check both against drbd-utils' own parser and its dry run.
That file is for the administrator (``drbdadm -c FILE dump``); genet never reads it back.

Configuration choices (one place: :func:`render_config` and the command builders):

- ``protocol C``: a write completes only once it is on both disks.
- ``cram-hmac-alg sha1`` + ``shared-secret``: a peer that does not know the disk's secret is
  refused (same keywords in 8.4 and 9).
- after split brain, only a side that has no changes is ever discarded automatically:
  ``after-sb-0pri discard-zero-changes`` (no primary: the side without changes becomes the
  sync target), ``after-sb-1pri consensus`` (one primary: the secondary is discarded only if
  it has no changes either), ``after-sb-2pri disconnect``. Anything else stays StandAlone
  until someone decides, as Ganeti issue #846 asks ("never discard a side silently").
- ``fencing resource-only`` (disk section in 8.4, net section in 9) without a fence-peer
  handler: a graceful disconnect marks the secondary Outdated in its meta data, and DRBD
  itself refuses to promote a side while the peer's state is unknown ("Refusing to be
  Primary while peer is not outdated") unless forced; a primary that merely loses its peer
  keeps running degraded. ``dont-care`` would let a stale secondary be promoted silently;
  ``resource-and-stonith`` freezes I/O until a handler answers, and genet's master, not the
  nodes, decides about fencing.
- ``on-io-error detach``: a failing local disk is dropped and I/O continues from the peer.
- ``allow-two-primaries`` is never in the file: migration turns it on for the switch-over
  with ``drbdsetup net-options`` (:meth:`DrbdStorage.set_dual_primary`) and off again after.

Roles: :meth:`DrbdStorage.promote` waits for the connection handshake (during which DRBD
decides which side holds the newer data) and refuses a side whose disk is not UpToDate, a
side whose peer has not been heard from, and a side whose handshake ended StandAlone (split
brain, unrelated data); ``force=True`` (Ganeti's --ignore-consistency) is the only way past.

Status comes from /proc/drbd in 8.4 and from ``drbdsetup status --json`` in 9. Executables,
/dev and /proc come from storage parameters (``drbd_bindir``, ``drbd_dev_dir``,
``drbd_proc``) or the environment (``GENET_DRBD_BINDIR``, ``GENET_DRBD_DEV_DIR``,
``GENET_DRBD_PROC``), so tests run the fake in test/fakes/drbd.

The parts: ``backing`` (where the volumes come from), ``resource`` (a resource, its name, volumes
and file), ``commands`` (drbdsetup/drbdmeta per version), ``status`` (the kernel's state in one
vocabulary) and ``backend`` (the template itself).
"""
