"""gnt-cluster epo: emergency power-off of nodes, node groups or the whole cluster, and --on to
bring them back, as Ganeti's.

Off: every instance on the nodes is shut down (its state is not remembered, so --on can tell
what to start again), then the nodes are powered off through their out-of-band programs
(genet.oob). On: the nodes are powered on, then each instance is started once every node it
lives on answers on noded's port again. The master is never powered off or on: it is where
the command runs.
"""
from __future__ import annotations

import itertools
import socket
import sys
import time
from typing import Callable

from genet import config, errors, luxi, oob, opcodes
from genet.cli import base
from genet.query.common import RS_NORMAL

PING_INTERVAL = 30          # seconds between two rounds of looking for nodes that came back
PING_TIMEOUT = 1            # seconds one look may take
REACHABLE_TIMEOUT = 15 * 60  # seconds --on waits for the nodes
SHUTDOWN_TIMEOUT = 120      # Ganeti's default --shutdown-timeout


def cmd_epo(ns) -> int:
    if ns.groups and ns.all:
        print("Only one of --groups or --all are allowed", file=sys.stderr)
        return 1
    if ns.names and ns.all:
        print("Arguments in combination with --all are not allowed", file=sys.stderr)
        return 1
    client = luxi.Client()
    names = ns.names
    if ns.groups:
        groups = base.query_named("group", ["name", "node_list"], ns.names, "group", client)
        names = list(itertools.chain.from_iterable(g["node_list"] for g in groups))
    nodes = base.query_named("node", ["name", "master", "pinst_list", "sinst_list", "powered", "offline", "pip"],
                             names, "node", client)
    acted, inst_map = [], {}
    for node in nodes:
        if not node["offline"]:     # an instance waits for its nodes, the master counting as up
            for inst in node["pinst_list"] + node["sinst_list"]:
                inst_map.setdefault(inst, set())
                if not node["master"]:
                    inst_map[inst].add(node["name"])
        if node["master"] and not ns.all and not ns.on:
            print(f"{node['name']} is the master node, please do a master-failover to another node not affected by"
                  " the EPO or use --all if you intend to shutdown the whole cluster", file=sys.stderr)
            return 1
        if node["master"]:      # it runs this command: the last to go down, by hand
            if not ns.on:
                print(f"Node {node['name']} is the master node: power it off by hand once the others are off")
            continue
        if node["powered"] is None:
            print(f"Node {node['name']} does not support out-of-band handling, it can not be handled in a fully"
                  " automated manner")
        elif node["powered"] == ns.on:
            print(f"Node {node['name']} is already in desired power state, skipping")
        elif not node["offline"] or node["powered"]:
            acted.append(node["name"])
    if not ns.force:
        print("Affected nodes:\n" + "\n".join(f"  {n['name']}" for n in nodes))
        base.confirm_or_fail(ns, "--force", f"The epo will operate on {len(nodes)} nodes")
    if ns.on:
        return epo_on(ns, client, {n["name"]: n["pip"] for n in nodes}, acted, inst_map)
    return epo_off(ns, client, acted, inst_map)


def epo_off(ns, client: luxi.Client, acted: list[str], inst_map: dict) -> int:
    if not instances_to(ns, client, sorted(inst_map), start=False):
        print("Please investigate and stop instances manually before continuing", file=sys.stderr)
        return 1
    if acted and not oob_power(ns, client, acted, on=False):
        return 1
    return 0


def epo_on(ns, client: luxi.Client, addresses: dict[str, str], acted: list[str], inst_map: dict) -> int:
    if acted and not oob_power(ns, client, acted, on=True):
        print("Not all nodes seem to get back up, investigate and start manually if needed", file=sys.stderr)
    waiting = dict(inst_map)

    def start_ready(up: set[str]) -> bool:
        ready = sorted(inst for inst, needs in waiting.items() if needs <= up)
        for inst in ready:
            del waiting[inst]
        return not ready or instances_to(ns, client, ready, start=True)

    print("Waiting until all nodes are available again")
    port = int(config.read_ssconf().get("noded_port", config.DEFAULT_NODED_PORT))
    if not when_reachable(addresses, port, start_ready):
        print("Please investigate and start stopped instances manually", file=sys.stderr)
        return 1
    return 0


def oob_power(ns, client: luxi.Client, nodes: list[str], on: bool) -> bool:
    """Power the nodes on or off (their offline flag aside); False if any failed."""
    op = opcodes.OpOobCommand(node_names=nodes, command=oob.POWER_ON if on else oob.POWER_OFF, ignore_status=True,
                              timeout=ns.timeout, power_delay=ns.power_delay)
    ok = True
    for (_, name), (status, _) in base.submit_or_run(ns, [op], client)[0]:
        if status != RS_NORMAL:
            print(f"There was a problem changing power for {name}, please investigate", file=sys.stderr)
            ok = False
    return ok


def instances_to(ns, client: luxi.Client, names: list[str], start: bool) -> bool:
    """Start or shut down the instances, one job each, all submitted before any is waited for."""
    submit, success, failed = ("startup", "started", "starting") if start else ("shutdown", "stopped", "stopping")
    jobs = []
    for name in names:
        print(f"Submit {submit} of instance {name}")
        op = (opcodes.OpInstanceStartup(instance_name=name) if start else
              opcodes.OpInstanceShutdown(instance_name=name, timeout=ns.shutdown_timeout, no_remember=True))
        jobs.append((name, client.submit_job([o.to_dict() for o in base.prepare(ns, [op])])))
    bad = 0
    for name, job_id in jobs:
        try:
            base.poll_job(client, job_id)
        except errors.GenericError as err:
            print(f"{name}: {errors.format_error(err)}", file=sys.stderr)
            bad += 1
    if bad:
        print(f"There were errors while {failed} instances:\n{bad} error(s) out of {len(jobs)} instance(s)",
              file=sys.stderr)
        return False
    print(f"All instances have been {success} successfully")
    return True


def tcp_ping(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=PING_TIMEOUT):
            return True
    except OSError:
        return False


def when_reachable(addresses: dict[str, str], port: int, action: Callable[[set[str]], bool],
                   interval: float = PING_INTERVAL, timeout: float = REACHABLE_TIMEOUT,
                   ping: Callable[[str, int], bool] = tcp_ping, clock=time) -> bool:
    """Run ``action(nodes up so far)`` at the start and each time a node answers on ``port``,
    until all did (True if every action succeeded) or ``timeout`` passed (False)."""
    down, up, ok = set(addresses), set(), True
    deadline = clock.monotonic() + timeout
    while True:
        ok = action(set(up)) and ok
        if not down:
            return ok
        if clock.monotonic() > deadline:
            print("Time exceeded while waiting for nodes to become reachable again:\n  - "
                  + "  - ".join(sorted(down)), file=sys.stderr)
            return False
        started = clock.monotonic()
        found = next((name for name in sorted(down) if ping(addresses[name], port)), None)
        if found is None:
            clock.sleep(max(0.0, started + interval - clock.monotonic()))
            continue
        print(f"Node {found} became available")
        up.add(found)
        down.discard(found)


def build(sub) -> None:
    p = base.command(sub, "epo", "Emergency power-off of nodes, node groups or the whole cluster (--on: back)",
                     cmd_epo)
    base.add_opcode_options(p, opcodes.OpOobCommand, ("node_names", "command", "ignore_status", "dry_run",
                                                      "priority"))
    p.add_argument("-f", "--force", action="store_true", help="Do not ask for confirmation")
    p.add_argument("--on", action="store_true", help="Power the nodes on again and start their instances")
    p.add_argument("--groups", action="store_true", help="The arguments are node groups")
    p.add_argument("--all", action="store_true", help="The whole cluster, the master included (no arguments)")
    p.add_argument("--shutdown-timeout", type=int, default=SHUTDOWN_TIMEOUT, metavar="SECONDS",
                   help="Seconds to wait for each instance to shut down")
    p.add_argument("names", nargs="*", metavar="NAME", help="Nodes (or node groups with --groups)")
