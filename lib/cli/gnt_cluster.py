"""gnt-cluster: create, inspect, verify, modify and fail over the cluster."""
from __future__ import annotations

import sys
import time

from genet import bootstrap, config, errors, luxi, opcodes, paths
from genet.cli import base
from genet.hypervisor import base as hypervisor_base


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
    data = bootstrap.init_cluster(ns.cluster_name, hypervisors, ns.candidate_pool_size, ns.noded_port,
                                  ns.secondary_ip, storage={"file_storage_dir": ns.file_storage_dir,
                                                            "shared_file_storage_dir": ns.shared_file_storage_dir,
                                                            "volume_group_name": vg_name,
                                                            "mac_prefix": ns.mac_prefix})
    print(f"Cluster {ns.cluster_name} initialised; master is {data['cluster']['master_node']}")
    return 0


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
    info = luxi.Client().call("QueryClusterInfo")
    print(f"Cluster name: {info['name']}")
    print(f"Cluster UUID: {info['uuid']}")
    print(f"Creation time: {base.format_value(info['ctime'], 'timestamp')}")
    print(f"Modification time: {base.format_value(info['mtime'], 'timestamp')}")
    print(f"Master node: {info['master']}")
    print(f"Architecture (this node): {info['architecture'][0]} ({info['architecture'][1]})")
    print(f"Tags: {', '.join(info['tags']) or '(none)'}")
    print(f"Default hypervisor: {info['default_hypervisor']}")
    print(f"Enabled hypervisors: {', '.join(info['enabled_hypervisors'])}")
    print("Cluster parameters:")
    print(f"  - candidate pool size: {info['candidate_pool_size']}")
    print(f"  - maximum running jobs: {info['max_running_jobs']}")
    print(f"  - node daemon port: {info['noded_port']}")
    print(f"  - MAC prefix: {info['mac_prefix']}")
    print(f"  - file storage directory: {info['file_storage_dir']}")
    print(f"  - shared file storage directory: {info['shared_file_storage_dir']}")
    print(f"  - lvm volume group: {info['volume_group_name']}")
    print(f"  - config serial: {info['serial_no']}")
    print(f"  - software version: {info['software_version']} (protocol {info['protocol_version']})")
    print(f"Nodes: {info['node_count']}, instances: {info['instance_count']}")
    return 0


def cmd_verify(ns) -> int:
    op = base.opcode_from_args(opcodes.OpClusterVerify, ns)
    results = base.submit_or_run(ns, [op])
    if not results or results[0] is None:     # --submit or --dry-run
        return 0
    return 0 if results[0]["ok"] else 1


def cmd_modify(ns) -> int:
    op = base.opcode_from_args(opcodes.OpClusterSetParams, ns)
    if all(getattr(op, p.name) is None for p in opcodes.OpClusterSetParams.PARAMS):
        raise errors.OpPrereqError("no parameters to change given", errors.ECode.INVAL)
    base.submit_or_run(ns, [op])
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
    p.add_argument("--master-netdev", default=None, help="Accepted for Ganeti compatibility (no floating IP)")
    # (the storage settings' defaults are the disk templates': DiskTemplate.SETTINGS)
    p.add_argument("--file-storage-dir", help="Directory for file disks, below each node's root")
    p.add_argument("--shared-file-storage-dir", help="Directory for sharedfile disks that every node mounts")
    p.add_argument("--vg-name", help="LVM volume group of plain disks")
    p.add_argument("--mac-prefix", default="aa:00:00", help="First three bytes of generated MAC addresses")

    p = base.command(sub, "destroy", "Destroy the cluster (only the master may be left)", cmd_destroy)
    p.add_argument("--yes-do-it", action="store_true", help="Confirm the destruction")

    base.command(sub, "getmaster", "Print the master node's name", cmd_getmaster)
    base.command(sub, "info", "Show cluster information", cmd_info)

    base.opcode_command(sub, "verify", "Check the cluster and report problems", opcodes.OpClusterVerify,
                        cmd_verify)
    base.opcode_command(sub, "modify", "Change cluster parameters", opcodes.OpClusterSetParams, cmd_modify)
    base.opcode_command(sub, "verify-disks", "Check the mirrored disks and mirror again where possible",
                        opcodes.OpClusterVerifyDisks, cmd_verify_disks)

    p = base.command(sub, "redist-conf", "Push the configuration to all nodes again", cmd_redist)
    base.add_submit_options(p)

    p = base.command(sub, "master-failover", "Make this master candidate the master", cmd_master_failover)
    p.add_argument("--no-voting", action="store_true", help="Do not ask the other nodes (two-node clusters)")
    p.add_argument("--yes-do-it", action="store_true", help="Confirm --no-voting")

    p = base.command(sub, "queue", "Drain, undrain or inspect the job queue", cmd_queue)
    p.add_argument("action", choices=["drain", "undrain", "info"])

    p = base.command(sub, "watcher", "Pause genet-watcher for a while, let it continue, or ask", cmd_watcher)
    p.add_argument("action", choices=["pause", "continue", "info"])
    p.add_argument("duration", nargs="?", default=None, metavar="DURATION",
                   help="How long to pause (s, m, h, d, w; a bare number is seconds)")

    base.add_tag_commands(sub, "cluster")


def main(argv=None) -> int:
    return base.run("gnt-cluster", build, argv)


if __name__ == "__main__":
    sys.exit(main())
