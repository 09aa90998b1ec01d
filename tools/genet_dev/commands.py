"""The dev-cluster command: an N-node genet test cluster on one machine, made of network namespaces.

Each node is a network namespace ``gnt-<tag>-n<i>`` whose ``eth0`` is one end of a veth
pair; the other end (``gv<tag>n<i>``) sits on a bridge ``gnt-br-<tag>`` in the root
namespace.  The tag is a short hash of the cluster directory, so two clusters in two
directories get distinct names; each gets its own subnet of 203.0.113.0/24, chosen under a
lock so that it overlaps no other cluster and contains no address the machine needs
(package registries, DNS resolvers, the default gateway: see genet.netguard).  Every node
has its own state root (``$GENET_ROOT``), its own sshd on its address, and the environment
that makes genet's commands run "as" that node.

Files in the cluster directory DIR::

    cluster.json            what ``start`` printed: nodes, addresses, env, pids
    devcluster-state.json   everything created so far (written as it is created), for ``stop``
    hosts                   name -> address table (GENET_HOSTS)
    id_ed25519[.pub]        the cluster's SSH key (GENET_SSH_KEY), authorized on every node
    authorized_keys, known_hosts
    nodeI/root              node I's GENET_ROOT
    nodeI/root/etc/genet/oob/script.conf   how genet-oob-script fences the nodes (genet_dev.fencing)
    host-netns              the host's network namespace, bind-mounted (genet_dev.fencing)
    nodeI/sshd_config, sshd.log, sshd.pid, ssh_host_ed25519_key[.pub]

Exit codes: 0 success, 1 a step failed (its command and output are printed), 2 refused
(bad arguments, foreign or running directory, addresses outside 203.0.113.0/24).
"""
from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

from genet import netguard
from genet.hypervisor import base as hypervisor_base
from genet_dev import fencing, policy
from genet_dev.cluster import (Cluster, State, check_tag, daemon_pids, live_netns, load_state, node_env, node_pids,
                               process_env, run_in_node, sshd_config, sshd_pid, start_sshd, teardown)
from genet_dev.netns import (CLUSTER_FILE, CLUSTER_NAME, Failure, GUEST_BRIDGE, GUEST_GATEWAY, MAX_NODES, SSHD,
                             STATE_FILE, TCP_RETRIES2, TCP_SYN_RETRIES, TEST_NET, TOOL, UsageError, bridge_name,
                             check_address, check_dir, check_subnet, forget_neighbours, gateway_ip, global_lock,
                             in_netns_argv, ip, kill_netns_processes, link_is_up, log, name_patterns, netns_inode,
                             netns_name, node_ip, peer_name, read_json, root_links, run, set_link, tag_for, veth_name)


# ---------------------------------------------------------------- subcommands

def check_prereqs() -> None:
    if os.geteuid() != 0:
        raise Failure("dev-cluster needs root (network namespaces, veths, sshd)")
    for tool in ("ip", "nsenter", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise Failure(f"{tool} is not installed (iproute2, util-linux, openssh-client)")
    if not os.access(SSHD, os.X_OK):
        raise Failure(f"{SSHD} is missing (apt-get install openssh-server)")


def choose_subnet(requested: str | None, nodes: int, tag: str,
                  needed: list[netguard.Needed]) -> ipaddress.IPv4Network:
    """The requested subnet if it keeps clear of what the machine needs and of other clusters,
    else (none requested) the lowest such /27 of TEST-NET-3 (see genet.netguard)."""
    used = netguard.used_networks(ip("-j", "-4", "addr", "show").stdout, ip("-j", "-4", "route", "show").stdout,
                                  skip_links=[bridge_name(tag)])
    if requested is None:
        net = netguard.free_subnet(needed, used)
        if net is None:
            raise UsageError(f"no free /{netguard.SUBNET_PREFIX} in {TEST_NET}: every one holds an address "
                             "this machine needs or overlaps another dev cluster; stop one")
        log(f"subnet {net} (free, and clear of {', '.join(map(str, needed)) or 'nothing resolved'})")
        return check_subnet(str(net), nodes)
    net = check_subnet(requested, nodes)
    problems = netguard.conflicts(net, needed, used)
    if problems:
        raise UsageError(f"subnet {net} refused: " + "; ".join(problems)
                         + ". Leave --subnet out to get a free one")
    return net


def cmd_start(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    if not 1 <= args.nodes <= MAX_NODES:
        raise UsageError(f"--nodes must be between 1 and {MAX_NODES}, not {args.nodes}")
    if args.subnet is not None:
        check_subnet(args.subnet, args.nodes)
    bindir = Path(os.path.abspath(args.bin_dir or os.path.dirname(sys.executable)))
    tag = tag_for(directory)
    check_prereqs()
    needed = netguard.machine_needs(warn=log)      # resolved before the lock: DNS may be slow
    if not args.no_init:
        for command in ("gnt-cluster", "gnt-node", fencing.AGENT):
            if not os.access(bindir / command, os.X_OK):
                raise Failure(f"genet's {command} is not in {bindir}; run dev-cluster with "
                              "the python of genet's venv, pass --bin-dir, or use --no-init")
    with global_lock():
        existing = read_json(directory / CLUSTER_FILE) if directory.is_dir() else None
        old_state = read_json(directory / STATE_FILE) if directory.is_dir() else None
        for doc in (existing, old_state):
            if doc is not None:
                check_tag(directory, doc)
        running = live_netns(tag)
        if existing is not None and running:
            raise UsageError(f"a dev cluster runs in {directory} (namespaces "
                             f"{', '.join(running)}); run `dev-cluster stop --dir "
                             f"{directory}` first")
        if directory.exists() and not directory.is_dir():
            raise UsageError(f"{directory} exists and is not a directory")
        if directory.is_dir() and any(directory.iterdir()) and existing is None \
                and old_state is None:
            raise UsageError(f"{directory} is not empty and holds no dev cluster; "
                             "refusing to use it (stop would delete it)")
        patterns = name_patterns(tag)
        leftovers = running or [n for n in root_links() if patterns["link"].match(n)]
        if existing is not None or old_state is not None or leftovers:
            log(f"cleaning up what a previous run left in {directory}")
            teardown(directory, tag)
        net = choose_subnet(args.subnet, args.nodes, tag, needed)

        directory.mkdir(parents=True, exist_ok=True)
        state = State.new(directory, tag, str(net))
        prefix = net.prefixlen
        gateway = gateway_ip(net)
        bridge = bridge_name(tag)
        log(f"bridge {bridge} ({gateway}/{prefix})")
        ip("link", "add", "name", bridge, "type", "bridge")
        state.doc["bridge"] = bridge
        state.save()
        ip("addr", "add", f"{gateway}/{prefix}", "dev", bridge)
        ip("link", "set", bridge, "up")

        nodes = []
        for i in range(1, args.nodes + 1):
            name, ns, veth, peer = f"node{i}", netns_name(tag, i), veth_name(tag, i), \
                peer_name(tag, i)
            address = check_address(node_ip(net, i))
            log(f"{name}: namespace {ns}, {veth} <-> eth0 {address}/{prefix}")
            ip("netns", "add", ns)
            state.add("netns", ns)
            ip("link", "add", veth, "type", "veth", "peer", "name", peer)
            state.add("links", veth)
            ip("link", "set", peer, "netns", ns)
            ip("-n", ns, "link", "set", peer, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "route", "add", "default", "via", gateway)
            # a peer cut off must fail a blocked TCP write in seconds, not the default ~15 minutes:
            # a mirror's primary then goes on degraded (see man/dev-cluster.rst)
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv4.tcp_retries2={TCP_RETRIES2}",
                 f"net.ipv4.tcp_syn_retries={TCP_SYN_RETRIES}"])
            ip("link", "set", veth, "master", bridge)
            ip("link", "set", veth, "up")
            # the bridge guests' taps join (NIC link gnt-br0); each node routes its guests alone
            ip("-n", ns, "link", "add", GUEST_BRIDGE, "type", "bridge")
            ip("-n", ns, "addr", "add", GUEST_GATEWAY, "dev", GUEST_BRIDGE)
            ip("-n", ns, "link", "set", GUEST_BRIDGE, "up")
            root = directory / name / "root"
            (root / "etc/default").mkdir(parents=True, exist_ok=True)
            (root / "etc/default/genet").write_text(
                f'NODED_ARGS="--watcher-interval {args.watcher_interval:g}"\n')
            nodes.append({"name": name, "ip": address, "netns": ns, "veth": veth,
                          "root": str(root), "env": node_env(directory, i, bindir),
                          "state": "up"})

        fencing.install(directory, [Path(n["root"]) for n in nodes])

        hosts = [f"# dev-cluster {directory} (tag {tag})"]
        hosts += [f"{n['ip']} {n['name']}" for n in nodes]
        hosts.append(f"{nodes[0]['ip']} {CLUSTER_NAME}   # the cluster name: the master")
        (directory / "hosts").write_text("\n".join(hosts) + "\n")

        key = directory / "id_ed25519"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"dev-cluster-{tag}",
             "-f", str(key)])
        (directory / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
        known = []
        for i, node in enumerate(nodes, 1):
            hostkey = directory / node["name"] / "ssh_host_ed25519_key"
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                 f"{node['name']}-{tag}", "-f", str(hostkey)])
            pub = Path(f"{hostkey}.pub").read_text().split()
            known.append(f"{node['name']},{node['ip']} {pub[0]} {pub[1]}")
            (directory / node["name"] / "sshd_config").write_text(
                sshd_config(directory, i, node["ip"], node["env"]))
        (directory / "known_hosts").write_text("\n".join(known) + "\n")

        pids: dict[str, dict[str, int]] = {}
        for node in nodes:
            pid = start_sshd(directory, node["name"], node["netns"])
            state.set_pid(node["name"], "sshd", pid)
            pids[node["name"]] = {"sshd": pid}
        log(f"{len(nodes)} sshds up")

        cluster = Cluster(directory, {
            "dir": str(directory), "tag": tag, "bridge": bridge, "subnet": str(net),
            "gateway": gateway, "hypervisor": args.hypervisor, "master": "node1",
            "guest_bridge": GUEST_BRIDGE, "guest_gateway": GUEST_GATEWAY,
            "shared_dir": str(directory / "shared"),
            "cluster_name": CLUSTER_NAME, "initialized": False,
            "oob_program": None if args.no_init else str(bindir / fencing.AGENT),
            "ssh": {"user": "root", "port": 22, "key": str(key),
                    "known_hosts": str(directory / "known_hosts")},
            "nodes": nodes,
            "exec": f"{TOOL} exec --dir {directory} NODE -- CMD",
            "pids": pids})
        cluster.save()

    if not args.no_init:
        master = nodes[0]
        try:
            (directory / "shared").mkdir(exist_ok=True)
            run_in_node(master, ["gnt-cluster", "init", *policy.init_options(),
                                 f"--enabled-hypervisors={args.hypervisor}",
                                 f"--node-parameters={fencing.oob_program(bindir)}",
                                 f"--shared-file-storage-dir={directory / 'shared'}", CLUSTER_NAME],
                        timeout=args.timeout)
            for node in nodes[1:]:
                run_in_node(master, ["gnt-node", "add", "--no-ssh-key-check", node["name"]],
                            timeout=args.timeout)
        except Failure as err:
            raise Failure(f"{err}\nThe nodes' network and sshds stay up for inspection "
                          f"(`{TOOL} exec --dir {directory} node1 -- CMD`); tear down with "
                          f"`{TOOL} stop --dir {directory}`") from None
        cluster.doc["initialized"] = True
        cluster.doc["pids"] = {n["name"]: node_pids(directory, n) for n in nodes}
        cluster.save()
    print(json.dumps(cluster.doc, indent=2))
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("exec needs a command: exec --dir DIR NODE -- CMD...")
    cluster = Cluster.load(directory)
    node = cluster.node(args.node)
    if netns_inode(node["netns"]) is None:
        raise Failure(f"namespace {node['netns']} of {node['name']} does not exist")
    argv = in_netns_argv(node["netns"], command)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, process_env(node["env"]))
    except OSError as err:
        raise Failure(f"cannot run nsenter: {err}") from None
    return 127   # not reached


@contextlib.contextmanager
def locked_node(args: argparse.Namespace) -> Iterator[tuple[Cluster, dict]]:
    """The cluster in ``--dir`` and its node ``args.node``, under the global lock."""
    directory = check_dir(args.dir)
    check_prereqs()
    with global_lock():
        cluster = Cluster.load(directory)
        yield cluster, cluster.node(args.node)


def cmd_kill_node(args: argparse.Namespace) -> int:
    with locked_node(args) as (cluster, node):
        count = kill_netns_processes(node["netns"])
        set_link(node["veth"], up=False)
        if link_is_up(node["veth"]) is not False:      # a fence must be sure: see fencing
            raise Failure(f"link {node['veth']} of {node['name']} is not down after `ip link set down`")
        node["state"] = "killed"
        cluster.doc["pids"][node["name"]] = {}
        cluster.save()
    log(f"{node['name']}: killed {count} processes in {node['netns']}, link {node['veth']} down")
    return 0


def _set_partition(args: argparse.Namespace, up: bool) -> int:
    with locked_node(args) as (cluster, node):
        set_link(node["veth"], up=up)
        if up:
            forget_neighbours(cluster)
        if node.get("state") != "killed":
            node["state"] = "up" if up else "partitioned"
        cluster.save()
    log(f"{node['name']}: link {node['veth']} {'up' if up else 'down'}")
    return 0


def cmd_partition(args: argparse.Namespace) -> int:
    return _set_partition(args, up=False)


def cmd_heal(args: argparse.Namespace) -> int:
    return _set_partition(args, up=True)


def cmd_restart(args: argparse.Namespace) -> int:
    with locked_node(args) as (cluster, node):
        directory = cluster.dir
        if netns_inode(node["netns"]) is None:
            raise Failure(f"namespace {node['netns']} of {node['name']} is gone; "
                          "stop and start the cluster again")
        set_link(node["veth"], up=True)
        forget_neighbours(cluster)
        pid = sshd_pid(directory, node["name"])
        if pid is None:
            pid = start_sshd(directory, node["name"], node["netns"])
            log(f"{node['name']}: sshd started ({pid})")
        state = load_state(directory)
        if state:
            state.set_pid(node["name"], "sshd", pid)
        node["state"] = "up"
        cluster.doc["pids"][node["name"]] = node_pids(directory, node)
        cluster.save()
    if shutil.which("genet-daemon", path=node["env"]["PATH"]) is None:
        raise Failure(f"{node['name']}: link and sshd are up, but genet's daemons were not "
                      f"started: no genet-daemon on the node's PATH ({node['env']['PATH']})")
    run_in_node(node, ["genet-daemon", "start"], timeout=args.timeout)
    with global_lock():
        cluster = Cluster.load(directory)
        cluster.doc["pids"][node["name"]] = node_pids(directory, cluster.node(node["name"]))
        cluster.save()
    log(f"{node['name']}: restarted ({cluster.doc['pids'][node['name']]})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    check_prereqs()
    with global_lock():
        done = teardown(directory, tag_for(directory))
    for line in done:
        log(line)
    if not done:
        log(f"nothing to stop for {directory}")
    return 0


def node_status(directory: Path, node: dict) -> dict:
    sshd = sshd_pid(directory, node["name"])
    up = link_is_up(node["veth"])
    return {"name": node["name"], "ip": node["ip"], "netns": node["netns"],
            "netns_exists": netns_inode(node["netns"]) is not None,
            "link": {True: "up", False: "down", None: "missing"}[up],
            "sshd": sshd is not None, "sshd_pid": sshd,
            "daemons": daemon_pids(Path(node["root"])),
            "state": node.get("state", "up")}


def cmd_status(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    cluster = Cluster.load(directory)
    nodes = [node_status(directory, n) for n in cluster.doc["nodes"]]
    bridge = link_is_up(cluster.doc["bridge"])
    if args.json:
        print(json.dumps({"dir": str(directory), "tag": cluster.tag,
                          "bridge": cluster.doc["bridge"],
                          "bridge_up": bridge, "nodes": nodes}, indent=2))
        return 0
    print(f"cluster {directory} tag {cluster.tag} bridge {cluster.doc['bridge']} "
          f"({'up' if bridge else 'down' if bridge is False else 'missing'})")
    print(f"{'node':<8} {'address':<15} {'netns':<6} {'link':<8} {'sshd':<14} "
          f"{'state':<12} daemons")
    for s in nodes:
        sshd = f"up ({s['sshd_pid']})" if s["sshd"] else "down"
        daemons = ", ".join(f"{k} ({v})" for k, v in s["daemons"].items()) or "-"
        print(f"{s['name']:<8} {s['ip']:<15} {'yes' if s['netns_exists'] else 'no':<6} "
              f"{s['link']:<8} {sshd:<14} {s['state']:<12} {daemons}")
    return 0


def cmd_power_status(args: argparse.Namespace) -> int:
    """The node's recorded power (killed: off) as genet-oob-script reads it: exit 0 powered, 1 off,
    3 unknown (never 1 for a failure: that would report a node off that may run)."""
    try:
        node = Cluster.load(check_dir(args.dir)).node(args.node)
    except (Failure, UsageError) as err:
        print(f"dev-cluster: power-status failed: {err}", file=sys.stderr)
        return fencing.UNKNOWN
    powered = node.get("state") != "killed"
    print(f"{node['name']} {'powered' if powered else 'off (killed)'}")
    return fencing.POWERED if powered else fencing.UNPOWERED


def cmd_health(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    node = Cluster.load(directory).node(args.node)
    for item, status in fencing.health(node_status(directory, node)):
        print(f"{item} {status}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dev-cluster",
        description="An N-node genet test cluster on this machine, one network namespace "
                    f"per node, addresses in {TEST_NET}.")
    sub = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    def add(name: str, func, help_text: str, node: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--dir", required=True, help="the cluster directory")
        if node:
            p.add_argument("node", metavar="NODE", help="node name, e.g. node2")
        p.set_defaults(func=func)
        return p

    p = add("start", cmd_start, "create the namespaces, sshds and (unless --no-init) "
            "initialise a genet cluster on them")
    p.add_argument("--nodes", type=int, required=True, metavar="N",
                   help=f"number of nodes, 1..{MAX_NODES}")
    p.add_argument("--hypervisor", choices=hypervisor_base.names(), default="fake")
    p.add_argument("--watcher-interval", type=float, default=0, metavar="SECONDS",
                   help="genet-noded runs genet-watcher this often (default 0: never; tests run it)")
    p.add_argument("--no-init", action="store_true",
                   help="only build the network and sshds; run no genet command")
    p.add_argument("--subnet",
                   help=f"node subnet inside {TEST_NET} (default: the lowest free "
                        f"/{netguard.SUBNET_PREFIX} that contains no address this machine needs: "
                        "package registries, DNS resolvers, the default gateway)")
    p.add_argument("--bin-dir", help="where genet's commands are (default: the directory of "
                                     "the running python, e.g. the venv's bin)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds allowed for each genet command (default %(default)s)")

    p = add("exec", cmd_exec, "run a command in a node's namespace with its environment",
            node=True)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")

    add("kill-node", cmd_kill_node, "SIGKILL every process of a node (sshd and genet "
        "daemons included) and take its link down", node=True)
    add("partition", cmd_partition, "take a node's link down (processes keep running)",
        node=True)
    add("heal", cmd_heal, "bring a node's link up again", node=True)
    p = add("restart", cmd_restart, "link up, sshd up, then `genet-daemon start` on the node",
            node=True)
    p.add_argument("--timeout", type=float, default=120)
    add("stop", cmd_stop, "kill everything, delete namespaces, links, bridge and DIR")
    p = add("status", cmd_status, "per node: namespace, link, sshd, genet daemons")
    p.add_argument("--json", action="store_true")
    add("power-status", cmd_power_status, "exit 0 if the node is powered (not killed), 1 if "
        "kill-node killed it, 3 if that cannot be told", node=True)
    add("health", cmd_health, "one line 'ITEM OK|CRITICAL' for the node's namespace, link, sshd "
        "and genet-noded", node=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except UsageError as err:
        print(f"dev-cluster: error: {err}", file=sys.stderr)
        return 2
    except Failure as err:
        print(f"dev-cluster: {args.command_name} failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
