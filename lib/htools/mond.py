"""hbal --mond: the instances' loads from what they really use, instead of declared sizes.

Ganeti's hbal asks each node's monitoring daemon; genet's master keeps the nodes' inst-usage
reports as a short history (genet.usage), so --mond=yes asks the master daemon for it
(QueryUsage, over the -L socket or this node's) and takes each instance's load (cpu, mem,
disk, net) from its recent samples and their trend. ``--mond-data FILE`` reads Ganeti's MonD
format instead ([{"node": NAME, "reports": [REPORT, ...]}, ...]): its cpu-avg-load reports are
used as Ganeti uses them (a node's CPU load spread over its primary instances by their vcpus,
the node's own load being the report's), or, when every node has one, genet's inst-usage
reports (each instance's own four loads, from that one report).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from genet import collectors, usage

CPU_AVG_LOAD = "cpu-avg-load"


@dataclass
class Loads:
    """What --mond found: full loads per instance, and nodes' CPU loads to spread (Ganeti's)."""
    util: dict[str, tuple] = field(default_factory=dict)
    node_cpu: dict[str, float] = field(default_factory=dict)
    complete: bool = True

    def apply_node_cpu(self, st) -> None:
        """Ganeti's cpu-avg-load use: each primary instance gets its node's load times its share
        of the node's used vcpus; the node's CPU load is the report's."""
        if not self.node_cpu:
            return
        from genet.htools.nodevals import INDEX
        for inst in st.instances:
            total = self.node_cpu[st.node_names[inst.pnode]]
            inst.util = (total / st.F[INDEX["u_cpu"], inst.pnode] * inst.vcpus, *inst.util[1:])
        for k, name in enumerate(st.node_names):
            st.F[INDEX["load_c"], k] = self.node_cpu[name]


def warn(message: str) -> None:
    """As Ganeti's hbal logs a warning of its MonD backend: the message alone, on standard error."""
    print(message, file=sys.stderr)


def from_history(snapshot: dict, data, weight: float = usage.TREND_WEIGHT, say=warn) -> Loads:
    """Each instance's load from the master's history; an instance without samples (stopped,
    just started) has the least load, and a running one among them makes the data incomplete."""
    found = usage.loads(snapshot, weight)
    least = (usage.MIN_LOAD,) * len(usage.METRICS)
    missing = [i.name for i in data.instances if i.name not in found and i.status == "running"]
    if missing:
        say(f"No usage data available for {', '.join(missing)}")
    return Loads({i.name: found.get(i.name, least) for i in data.instances}, complete=not missing)


def from_file(text: str, data) -> Loads:
    """Ganeti's --mond-data format; ValueError when it is not."""
    entries = json.loads(text)
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "node" in e and "reports" in e
                                                for e in entries):
        raise ValueError("expected an array of objects with members node and reports")
    reports = {e["node"]: {r.get("name"): r for r in e["reports"] if isinstance(r, dict)} for e in entries}
    nodes = [n.name for n in data.nodes]
    if all(collectors.INST_USAGE in reports.get(n, {}) for n in nodes):
        util = {}
        for n in nodes:
            report = reports[n][collectors.INST_USAGE]["data"]
            for name, measured in report["instances"].items():
                loads = usage.instance_loads(measured, report["node"])
                if loads is not None:
                    util[name] = tuple(max(usage.MIN_LOAD, x) for x in loads)
        least = (usage.MIN_LOAD,) * len(usage.METRICS)
        return Loads({i.name: util.get(i.name, least) for i in data.instances})
    if not all(CPU_AVG_LOAD in reports.get(n, {}) for n in nodes):
        warn(f"Didn't receive an answer by all MonDs, {CPU_AVG_LOAD}'s data will be ignored.")
        return Loads(complete=False)
    return Loads(node_cpu={n: float(reports[n][CPU_AVG_LOAD]["data"]["cpu_total"]) for n in nodes})


def read(args, data) -> Loads:
    """The loads --mond=yes and --mond-data give; exits as Ganeti's hbal on unreadable data."""
    from genet.htools.loader import fail, io_error
    path = getattr(args, "mond_data", None)
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                found = from_file(f.read(), data)
        except OSError as err:
            print(f"{getattr(args, 'prog', 'hbal')}: {io_error(err)}", file=sys.stderr)
            raise SystemExit(1) from None
        except (ValueError, KeyError, TypeError) as err:
            fail(f"can't parse MonD data: Parsing MonD's answer: {err}")
    else:
        from genet import errors
        from genet.htools import live
        try:
            found = from_history(live.client_for(args).call("QueryUsage"), data)
        except (errors.GenericError, OSError) as err:
            warn(f"Failed to read the usage history from the master daemon: {err}")
            found = Loads(complete=False)
    if getattr(args, "exit_on_missing_mond_data", False) and not found.complete:
        fail("Not all required data available")
    return found
