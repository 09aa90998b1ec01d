"""Every file genet touches, below one root prefix.

A node's state lives under ``$GENET_ROOT`` (default ``/``), so several nodes of a
dev cluster, each with its own root, can share one machine.
"""
from __future__ import annotations

import contextlib
import os
import contextvars
import socket
from pathlib import Path
from typing import Callable, Iterator

_acting: contextvars.ContextVar = contextvars.ContextVar("acting_as", default=None)   # see acting_as


def root() -> Path:
    override = _acting.get()
    return override[0] if override else Path(os.environ.get("GENET_ROOT", "/"))


@contextlib.contextmanager
def acting_as(node_root: Path, name: str) -> Iterator[None]:
    """This thread is node ``name`` with its state below ``node_root`` for a while: several nodes
    of one process (in-process tests, simulators) each run their own noded procedures. (A
    context variable: a new thread starts as no node, as with a thread-local.)"""
    token = _acting.set((Path(node_root), name))
    try:
        yield
    finally:
        _acting.reset(token)


def _below(base: Callable[[], Path], relative: str, doc: str | None = None) -> Callable[..., Path]:
    """A path function: ``relative`` below ``base()``, looked up at each call (the root may change:
    $GENET_ROOT, acting_as). A ``{}`` in ``relative`` takes the function's one argument (a daemon's
    name, an ssconf key)."""
    if "{}" in relative:
        def path_of(name: str) -> Path:
            return base() / relative.format(name)
        path: Callable[..., Path] = path_of
    else:
        def path_fixed() -> Path:
            return base() / relative
        path = path_fixed
    path.__doc__ = doc
    return path


# the directories of a node's state and the files genet keeps in each
data_dir = _below(root, "var/lib/genet")
config_file = _below(data_dir, "config.data")
queue_db = _below(data_dir, "queue.db")
master_epoch_file = _below(data_dir, "master_epoch",
                           "The newest master epoch this node was fenced with (see genet.config.master_epoch).")
cluster_cert = _below(data_dir, "server.pem",
                      "Cluster certificate and key (PEM): identity of every node for mutual TLS.")
ssconf_file = _below(data_dir, "ssconf_{}")
usage_history_file = _below(data_dir, "usage-history.json",
                            "The master's recent samples of what nodes and instances use (genet.usage).")
rapi_users_file = _below(data_dir, "rapi/users",
                         "RAPI users (Ganeti's format), copied to every master candidate by redist-conf.")
queue_drain_file = _below(data_dir, "queue/drain")
cluster_domain_secret = _below(data_dir, "cluster-domain-secret",
                               "Ganeti's cluster domain secret: what clusters that move instances between"
                               " them share (genet.impexp).")
etcd_dir = _below(data_dir, "etcd",
                  "This node's etcd member (genet.ha.etcd_member): its data and its TLS files.")

run_dir = _below(root, "var/run/genet")
master_socket = _below(run_dir, "socket/master.sock")
crypto_keys_dir = _below(run_dir, "crypto", "Keys and certificates made for one remote export each (Ganeti's).")
pid_file = _below(run_dir, "{}.pid")
master_contact_file = _below(run_dir, "master-contact",
                             "Touched at each heartbeat of the master: its age tells genet-noded it was cut off."
                             " In the run directory, so a reboot (which stops every guest) forgets it.")

log_dir = _below(root, "var/log/genet")
log_file = _below(log_dir, "{}.log")

# what the administrator provides (Ganeti's /etc/ganeti)
conf_dir = _below(root, "etc/genet")
external_master_setup_script = _below(conf_dir, "scripts/master-ip-setup",
                                      "The administrator's master IP setup script (--use-external-mip-script).")
restricted_commands_dir = _below(conf_dir, "restricted-commands",
                                 "The only commands gnt-node restricted-command may run.")
restricted_commands_lock = _below(root, "var/lock/genet-restricted-commands.lock")
oob_agent_config = _below(conf_dir, "oob/{}.conf",
                          "A bundled out-of-band agent's per-node settings (genet.fence): ipmi.conf, script.conf.")


def hosts_file() -> Path | None:
    """Extra name→address table consulted before DNS (``GENET_HOSTS``)."""
    value = os.environ.get("GENET_HOSTS")
    return Path(value) if value else None


def node_name() -> str:
    """This node's name: ``$GENET_HOSTNAME``, else ROOT/etc/genet/hostname, else the host name."""
    override = _acting.get()
    if override:
        return override[1]
    name = os.environ.get("GENET_HOSTNAME")
    if name:
        return name
    try:
        return (root() / "etc/genet/hostname").read_text().strip() or socket.gethostname()
    except OSError:
        return socket.gethostname()


def ensure_dirs() -> None:
    for d in (data_dir(), run_dir() / "socket", log_dir(), data_dir() / "queue"):
        d.mkdir(parents=True, exist_ok=True, mode=0o750)
