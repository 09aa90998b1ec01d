"""gnt-cluster: create, inspect, verify, modify and fail over the cluster."""
from __future__ import annotations

import sys
import time

from genet import bootstrap, config, errors, luxi, netutils, opcodes, paths
from genet.cli import base, cluster_admin, info, ipolicy
from genet.hypervisor import base as hypervisor_base
from genet.uidpool import format_pool


def cmd_init(ns) -> int:
    hypervisors = [h for h in ns.enabled_hypervisors.split(",") if h]
    known = hypervisor_base.names()
    for hv in hypervisors:
        if hv not in known:
            raise errors.OpPrereqError(f"unknown hypervisor {hv!r} (known: {', '.join(known)})", errors.ECode.INVAL)
    try:
        vg_name = None if ns.vg_name is None else opcodes.VgName().check(ns.vg_name)
    except ValueError as err:
        raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
    if ns.primary_ip_version is not None:
        check_ip_version(netutils.resolve(paths.node_name()), ns.primary_ip_version)
    refuse_init_options(ns)
    drbd_helper = init_drbd_helper(ns)          # refused before anything is made
    if ns.default_iallocator:
        from genet.cmdlib.allocator import check_allocator
        check_allocator(ns.default_iallocator)
    data = bootstrap.init_cluster(ns.cluster_name, hypervisors, ns.candidate_pool_size, ns.noded_port,
                                  ns.secondary_ip, storage={"file_storage_dir": ns.file_storage_dir,
                                                            "shared_file_storage_dir": ns.shared_file_storage_dir,
                                                            "volume_group_name": vg_name,
                                                            "mac_prefix": ns.mac_prefix},
                                  network={"netdev": ns.master_netdev, "netmask": ns.master_netmask,
                                           "external": ns.use_external_mip_script})
    print(f"Cluster {ns.cluster_name} initialised; master is {data['cluster']['master_node']}")
    defaults = {**{key: getattr(ns, key) for key in INIT_DEFAULTS if getattr(ns, key) is not None},
                **drbd_helper, **ipolicy.from_args(ns)}
    # the first job of the new cluster: the parameter defaults, then the cluster-init hooks (Ganeti's)
    base.submit_or_run(ns, [*([opcodes.OpClusterSetParams(**defaults)] if defaults else []),
                            opcodes.OpClusterPostInit()])
    return 0


def check_ip_version(address: str, version: int) -> None:
    """Ganeti's --primary-ip-version: the master's address must be of that IP version."""
    found = 6 if ":" in address else 4
    if found != version:
        raise errors.OpPrereqError(f"this node's primary address {address} is IPv{found}, not IPv{version}"
                                   " (--primary-ip-version)", errors.ECode.INVAL)


def refuse_init_options(ns) -> None:
    """Ganeti's init options for what genet has not: refused, with the reason, before anything is made."""
    if ns.gluster_storage_dir is not None:
        raise errors.OpPrereqError("genet has no gluster disk template, so no gluster storage directory"
                                   " (--gluster-storage-dir)", errors.ECode.INVAL)
    if ns.ssh_key_type is not None or ns.ssh_key_bits is not None:
        raise errors.OpPrereqError("genet makes no SSH keys (--ssh-key-type, --ssh-key-bits): its nodes trust"
                                   " each other through the cluster certificate and gnt-node add logs in once"
                                   " with the admin's own key", errors.ECode.INVAL)


# the parameter defaults and settings init takes, as modify does (the rest of init's options are its own)
INIT_DEFAULTS = ("hvparams", "beparams", "nicparams", "ndparams", "diskparams", "enabled_disk_templates",
                 "uid_pool", "maintain_node_health", "prealloc_wipe_disks", "default_iallocator",
                 "default_iallocator_params", "hv_state", "disk_state",
                 "compression_tools", "install_image", "zeroing_image", "enabled_user_shutdown")


def init_drbd_helper(ns) -> dict:
    """Ganeti's init: with drbd enabled the helper defaults to /bin/true, cannot be unset, and must
    be the one this node's DRBD module runs (when it is loaded)."""
    from genet.cmdlib.cluster_settings import DEFAULT_DRBD_HELPER
    from genet.storage.base import names
    from genet.storage.drbd.backend import DrbdStorage
    drbd = "drbd" in (ns.enabled_disk_templates or names())
    if drbd and ns.drbd_helper == "":
        raise errors.OpPrereqError("Unsetting the drbd usermode helper while enabling DRBD is not allowed.",
                                   errors.ECode.INVAL)
    helper = DEFAULT_DRBD_HELPER if drbd and ns.drbd_helper is None else ns.drbd_helper
    current = DrbdStorage().usermode_helper() if drbd else None      # None: the module is not loaded here
    if current is not None and current != helper:
        raise errors.OpPrereqError(f"Error: requiring {helper} as drbd helper but {current} is the current helper",
                                   errors.ECode.INVAL)
    return {} if helper is None else {"drbd_helper": helper}


def cmd_destroy(ns) -> int:
    base.confirm_or_fail(ns, "--yes-do-it", "destroying the cluster removes its configuration and job queue")
    base.submit_or_run(ns, [opcodes.OpClusterDestroy()])
    bootstrap.destroy_local()
    return 0


def cmd_getmaster(ns) -> int:
    try:
        print(paths.ssconf_file("master_node").read_text().strip())
    except OSError:
        raise errors.NotClusterError("this node is not part of a cluster (no ssconf)") from None
    return 0


def cmd_info(ns) -> int:
    """The cluster in Ganeti's layout and words (a YAML document its tools read)."""
    print(info.dump(cluster_entries(luxi.Client().call("QueryClusterInfo"), ns.roman_integers)))
    return 0


def cmd_show_ispecs(ns) -> int:
    found = luxi.Client().call("QueryClusterInfo")
    print(ipolicy.create_command("gnt-cluster init", found["name"], found["ipolicy"], group=False))
    return 0


def cluster_entries(c: dict, roman: bool = False) -> list:
    from genet.osinterface import search_path
    def grouped(values: dict) -> dict:
        """Parameters per group of them (hypervisor, OS, "default"), whole numbers as --roman says."""
        return {name: {k: str(info.number(v, roman)) for k, v in group.items()} if isinstance(group, dict)
                else str(info.number(group, roman)) for name, group in values.items()}
    return [
        ("Cluster name", c["name"]), ("Cluster UUID", c["uuid"]),
        ("Creation time", info.timestamp(c["ctime"])), ("Modification time", info.timestamp(c["mtime"])),
        ("Master node", c["master"]), ("Architecture (this node)", f"{c['architecture'][0]} ({c['architecture'][1]})"),
        ("Tags", ", ".join(sorted(c["tags"])) or "(none)"),
        ("Default hypervisor", c["default_hypervisor"]), ("Enabled hypervisors", ", ".join(c["enabled_hypervisors"])),
        ("Hypervisor parameters", grouped(c["hvparams"])),
        ("OS-specific hypervisor parameters", grouped(c["os_hvp"])), ("OS parameters", grouped(c["osparams"])),
        ("Hidden OSes", ", ".join(c["hidden_os"])), ("Blacklisted OSes", ", ".join(c["blacklisted_os"])),
        ("Cluster parameters", [
            ("candidate pool size", info.number(c["candidate_pool_size"], roman)),
            ("maximal number of jobs running simultaneously", info.number(c["max_running_jobs"], roman)),
            ("maximal number of jobs simultaneously tracked by the scheduler",
             info.number(c["max_tracked_jobs"], roman)),
            ("mac prefix", c["mac_prefix"]), ("master netdev", c["master_netdev"]),
            ("master netmask", info.number(c["master_netmask"], roman)),
            ("use external master IP address setup script", c["use_external_mip_script"]),
            ("lvm volume group", c["volume_group_name"]),
            ("lvm reserved volumes", ", ".join(c["reserved_lvs"]) or "(none)"),
            ("drbd usermode helper", c["drbd_usermode_helper"]),
            ("file storage path", c["file_storage_dir"]),
            ("shared file storage path", c["shared_file_storage_dir"]),
            ("gluster storage path", c["gluster_storage_dir"]),
            ("maintenance of node health", c["maintain_node_health"]),
            ("uid pool", format_pool(c["uid_pool"])),
            ("default instance allocator", c["default_iallocator"]),
            ("default instance allocator parameters", c["default_iallocator_params"]),
            ("primary ip version", info.number(c["primary_ip_version"], roman)),
            ("preallocation wipe disks", c["prealloc_wipe_disks"]),
            ("OS search path", ", ".join(map(str, search_path()))),
            ("enabled disk templates", ", ".join(c["enabled_disk_templates"])),
            ("install image", c["install_image"]),
            ("instance communication network", c["instance_communication_network"]),
            ("zeroing image", c["zeroing_image"]), ("compression tools", c["compression_tools"]),
            ("enabled user shutdown", c["enabled_user_shutdown"]), ("modify ssh setup", c["modify_ssh_setup"]),
            ("ssh_key_type", c["ssh_key_type"]), ("ssh_key_bits", c["ssh_key_bits"]),
            ("node daemon port", c["noded_port"]), ("config serial", c["serial_no"]),
            ("software version", f"{c['software_version']} (protocol {c['protocol_version']})"),
        ]),
        ("Default node parameters", grouped(c["ndparams"])),
        ("Default instance parameters", grouped(c["beparams"])),
        ("Default nic parameters", grouped(c["nicparams"])),
        ("Default disk parameters", grouped(c["diskparams"])),
        ("Instance policy - limits for instances", policy_entries(c["ipolicy"], roman)),
        ("Data collectors", {name: {"active": active, "interval": f"{c['data_collector_interval'][name] / 1e6:.3f}s"}
                             for name, active in c["enabled_data_collectors"].items()}),
        ("High availability", {"automatic master failover": c["ha"]["auto_master_failover"],
                               "master epoch": c["master_epoch"], "last take-over": _takeover(c["ha"]),
                               **{f"{key} timeout": f"{value:g} s" for key, value in c["ha"]["timeouts"].items()}}),
        ("Automatic balancing", {"enabled": c["auto_balance"]["enabled"],
                                 "interval": f"{c['auto_balance']['interval']} minutes",
                                 "threshold": c["auto_balance"]["threshold"],
                                 "max moves": c["auto_balance"]["max_moves"],
                                 "max migrations": c["auto_balance"]["max_migrations"],
                                 "by usage": c["auto_balance"]["usage"]}),
    ]


def _takeover(ha: dict) -> str:
    """The last take-over of the master role, in words ("none" if none was recorded)."""
    last = ha.get("last_takeover")
    if not last:
        return "none"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["time"]))
    return f"{last['node']} (epoch {last['epoch']}, by {last['how']}) at {when}"


def policy_entries(policy: dict, roman: bool = False) -> list:
    """An instance policy as Ganeti's info commands show it."""
    def specs(values: dict) -> dict:
        return {k: info.number(v, roman) for k, v in values.items()}
    return [("bounds specs", [{f"{bound}/{i}": specs(minmax[bound]) for bound in ("max", "min")}
                              for i, minmax in enumerate(policy.get("minmax", []))]),
            ("allowed disk templates", ", ".join(policy.get("disk-templates", []))),
            ("std", specs(policy.get("std", {}))),
            ("vcpu-ratio", policy.get("vcpu-ratio")), ("spindle-ratio", policy.get("spindle-ratio"))]


# verify's switches for Ganeti's optional checks: option -> the check it skips
VERIFY_SKIPS = {"--no-nplus1-mem": "nplusone_mem", "--no-hv-param-assessment": "hvparam_assessment"}


def cmd_activate_master_ip(ns) -> int:
    base.submit_or_run(ns, [opcodes.OpClusterActivateMasterIp()])
    return 0


def cmd_deactivate_master_ip(ns) -> int:
    base.confirm_or_fail(ns, "--yes", "This will disable the master IP. All the open connections to the master IP"
                         " will be closed. To reach the master you will need to use its node IP")
    base.submit_or_run(ns, [opcodes.OpClusterDeactivateMasterIp()])
    return 0


def cmd_verify(ns) -> int:
    skip = [check for check in VERIFY_SKIPS.values() if getattr(ns, f"skip_{check}")]
    op = base.opcode_from_args(opcodes.OpClusterVerify, ns, **({"skip_checks": skip} if skip else {}))
    results = base.submit_or_run(ns, [op])
    if not results or results[0] is None:     # --submit or --dry-run
        return 0
    return 0 if results[0]["ok"] else 1


def cmd_modify(ns) -> int:
    # an empty list is a value here: --uid-pool= empties the pool, --reserved-lvs= the reservations
    emptied = {key: [] for key in ("uid_pool", "reserved_lvs") if getattr(ns, key) == []}
    op = base.opcode_from_args(opcodes.OpClusterSetParams, ns, **emptied, **ipolicy.from_args(ns))
    if all(getattr(op, p.name) is None for p in opcodes.OpClusterSetParams.PARAMS if p.name != "force"):
        raise errors.OpPrereqError("no parameters to change given", errors.ECode.INVAL)
    client = luxi.Client()
    [result] = base.submit_or_run(ns, [op], client) or [None]
    # as Ganeti's: the jobs the change submitted (making the instance communication network) are waited for
    for _, job_id in result.get("jobs", []) if isinstance(result, dict) else []:
        print(f"Waiting for job {job_id} ...")
        base.poll_job(client, job_id)
    return 0


def cmd_redist(ns) -> int:
    base.submit_or_run(ns, [opcodes.OpClusterRedistConf()])
    return 0


def cmd_master_failover(ns) -> int:
    if ns.no_voting:
        base.confirm_or_fail(ns, "--yes-do-it", "failing over without a vote may give the cluster two masters")
    result = bootstrap.master_failover(ns.no_voting)
    print(f"Master role moved from {result['old_master']} to {result['new_master']}")
    if result["unreachable"]:
        print(f"Unreachable nodes (not updated): {', '.join(result['unreachable'])}")
    for warning in result["warnings"]:
        print(warning, file=sys.stderr)
    return 0


def cmd_queue(ns) -> int:
    client = luxi.Client()
    if ns.action == "info":
        print(f"The drain flag is {'set' if client.call('QueryQueueInfo')['drained'] else 'unset'}")
    else:
        client.call("SetDrainFlag", ns.action == "drain")
    return 0


def cmd_watcher(ns) -> int:
    """Ganeti's watcher pause: until a time, cluster-wide."""
    from genet.cli.gnt_job import parse_age
    client = luxi.Client()
    if ns.action == "pause":
        if ns.duration is None:
            raise errors.OpPrereqError("gnt-cluster watcher pause needs a duration (e.g. 30m, 2h)",
                                       errors.ECode.INVAL)
        until = client.call("SetWatcherPause", time.time() + parse_age(ns.duration))
    elif ns.duration is not None:
        raise errors.OpPrereqError(f"gnt-cluster watcher {ns.action} takes no duration", errors.ECode.INVAL)
    elif ns.action == "continue":
        until = client.call("SetWatcherPause", None)
    else:
        [until] = client.call("QueryConfigValues", ["watcher_pause"])
        if until is not None and until <= time.time():
            until = None
    if until is None:
        print("The watcher is not paused.")
    else:
        print(f"The watcher is paused until {time.ctime(until)}.")
    return 0


def cmd_verify_disks(ns) -> int:
    """Print every mirrored disk that is not in sync; exit 1 while any stays so."""
    result = base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpClusterVerifyDisks, ns)])
    if result is None or result[0] is None:       # --submit, --dry-run
        return 0
    rows = result[0]
    bad = [row for row in rows if row[3] != "in sync"]
    for name, index, was, now in rows:
        if was != now:
            print(f"instance {name}: disk {index} was {was}, now {now}")
    print(f"{len(rows) - len(bad)} of {len(rows)} mirrored disk(s) in sync")
    return 1 if bad else 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.command(sub, "init", "Create a new cluster with this node as master", cmd_init)
    p.add_argument("cluster_name", metavar="CLUSTER_NAME")
    p.add_argument("--enabled-hypervisors", default="fake", help="Comma-separated hypervisors (see gnt-cluster(8))")
    p.add_argument("-C", "--candidate-pool-size", type=int, default=10, help="Wanted master candidates")
    p.add_argument("-s", "--secondary-ip", default=None, help="This node's replication address")
    p.add_argument("--noded-port", type=int, default=config.DEFAULT_NODED_PORT, help="Port of genet-noded")
    p.add_argument("--master-netdev", default=None, metavar="INTERFACE",
                   help="The device the master holds the master IP on (default: none, no floating master IP)")
    p.add_argument("--master-netmask", type=base.argument_type(opcodes.Int(1, 128), "master_netmask"),
                   default=None, metavar="NETMASK", help="CIDR netmask of the master IP (default: 32, IPv6: 128)")
    p.add_argument("--use-external-mip-script", type=base.argument_type(opcodes.Bool(), "use_external_mip_script"),
                   default=False, metavar="yes|no", help="Run the administrator's master-ip-setup script")
    p.add_argument("--primary-ip-version", type=int, choices=(4, 6), default=None,
                   help="The IP version of the nodes' primary addresses (checked against this node's)")
    p.add_argument("--no-etc-hosts", action="store_true",
                   help="Do not edit /etc/hosts (genet never does; accepted for Ganeti scripts)")
    p.add_argument("--no-ssh-init", action="store_true",
                   help="Do not set up SSH keys (genet's nodes trust the cluster certificate, not SSH keys;"
                        " accepted for Ganeti scripts)")
    p.add_argument("--gluster-storage-dir", metavar="DIR", help="Directory of gluster disks (refused: genet"
                   " has no gluster disk template)")
    p.add_argument("--ssh-key-type", choices=("rsa", "dsa", "ecdsa"), default=None,
                   help="Type of the SSH keys Ganeti makes (refused: genet makes none)")
    p.add_argument("--ssh-key-bits", type=int, metavar="BITS", default=None,
                   help="Length of the SSH keys Ganeti makes (refused: genet makes none)")
    # (the storage settings' defaults are the disk templates': DiskTemplate.SETTINGS)
    p.add_argument("--file-storage-dir", help="Directory for file disks, below each node's root")
    p.add_argument("--shared-file-storage-dir", help="Directory for sharedfile disks that every node mounts")
    p.add_argument("--vg-name", help="LVM volume group of plain disks")
    p.add_argument("-m", "--mac-prefix", default="aa:00:00", help="First three bytes of generated MAC addresses")
    base.add_opcode_options(p, opcodes.OpClusterSetParams,
                            skip=[q.name for q in opcodes.OpClusterSetParams.all_params()
                                  if q.name not in (*INIT_DEFAULTS, "drbd_helper")])
    ipolicy.add_options(p, old_specs=True)

    p = base.command(sub, "destroy", "Destroy the cluster (only the master may be left)", cmd_destroy)
    p.add_argument("--yes-do-it", action="store_true", help="Confirm the destruction")

    base.command(sub, "getmaster", "Print the master node's name", cmd_getmaster)
    base.add_info_options(base.command(sub, "info", "Show cluster information", cmd_info))
    base.command(sub, "show-ispecs-cmd", "Print the init command that recreates the instance policy's specs",
                 cmd_show_ispecs)

    p = base.opcode_command(sub, "verify", "Check the cluster and report problems", opcodes.OpClusterVerify,
                            cmd_verify)
    for flag, check in VERIFY_SKIPS.items():
        p.add_argument(flag, dest=f"skip_{check}", action="store_true", help=f"Skip the {check} check")
    ipolicy.add_options(base.opcode_command(sub, "modify", "Change cluster parameters", opcodes.OpClusterSetParams,
                                            cmd_modify))
    base.opcode_command(sub, "verify-disks", "Check the mirrored disks and mirror again where possible",
                        opcodes.OpClusterVerifyDisks, cmd_verify_disks)

    base.command(sub, "activate-master-ip", "Put the master IP on the master netdev", cmd_activate_master_ip)
    p = base.command(sub, "deactivate-master-ip", "Take the master IP off the master node", cmd_deactivate_master_ip)
    p.add_argument("--yes", action="store_true", help="Do not require confirmation")

    p = base.command(sub, "redist-conf", "Push the configuration to all nodes again", cmd_redist)
    base.add_submit_options(p)

    p = base.command(sub, "master-failover", "Make this master candidate the master", cmd_master_failover)
    p.add_argument("--no-voting", action="store_true", help="Do not ask the other nodes (two-node clusters)")
    p.add_argument("--yes-do-it", action="store_true", help="Confirm --no-voting")
    p.add_argument("--ignore-offline-nodes", action="store_true",
                   help="Leave offline nodes out of the vote (genet always does)")

    p = base.command(sub, "queue", "Drain, undrain or inspect the job queue", cmd_queue)
    p.add_argument("action", choices=["drain", "undrain", "info"])

    p = base.command(sub, "watcher", "Pause genet-watcher for a while, let it continue, or ask", cmd_watcher)
    p.add_argument("action", choices=["pause", "continue", "info"])
    p.add_argument("duration", nargs="?", default=None, metavar="DURATION",
                   help="How long to pause (s, m, h, d, w; a bare number is seconds)")

    base.add_tag_commands(sub, "cluster")

    # --- the administration commands (genet.cli.cluster_admin) ---
    cluster_admin.build(sub)


def main(argv=None) -> int:
    return base.run("gnt-cluster", build, argv)


if __name__ == "__main__":
    sys.exit(main())
