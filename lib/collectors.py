"""Ganeti's data collectors (its monitoring daemon's): their names, whether each is active and
how often it collects, as gnt-cluster modify --enabled-data-collectors and
--data-collector-interval set them (the cluster records only what was set; ``settings`` fills
in the rest), the parameter types of those two options, and the collectors themselves as each
node runs them (NodeCollectors; their reports reach RAPI's /metrics).

genet's nodes have what two of Ganeti's collectors read: the CPUs' load (cpu-avg-load, from
/proc/stat) and the block devices' statistics (diskstats, from /proc/diskstats). drbd and lv
read kernel DRBD and LVM, and the two Xen ones Xen, which genet's nodes have not: those report
nothing (``None``), active or not. genet adds one of its own, inst-usage (genet.inst_usage):
what each instance's process really uses, which the master keeps as a short history
(genet.usage) for hbal --mond and automatic balancing.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from genet.inst_usage import InstanceUsage
from genet.ptypes import Dict

INST_USAGE = "inst-usage"
# Ganeti's DATA_COLLECTOR_NAMES, then genet's own
NAMES = ("cpu-avg-load", "diskstats", "drbd", "inst-status-xen", "lv", "xen-cpu-avg-load", INST_USAGE)
DEFAULT_INTERVAL = 5_000_000       # microseconds (Ganeti's MOND_TIME_INTERVAL, 5 s)
# inst-usage feeds the master's history: a sample a minute keeps an hour in 60 (genet.usage)
DEFAULT_INTERVALS = {INST_USAGE: 60_000_000}


def settings(recorded: dict) -> dict[str, dict]:
    """Every collector's {"active", "interval"} (microseconds), the recorded values over the defaults."""
    return {name: {"active": True, "interval": DEFAULT_INTERVALS.get(name, DEFAULT_INTERVAL), **recorded.get(name, {})}
            for name in NAMES}


def changed(recorded: dict, active: dict | None, intervals: dict | None) -> dict:
    """The recorded settings with ``active`` ({name: bool}) and ``intervals`` ({name: µs}) applied;
    ValueError names a collector Ganeti does not have."""
    unknown = sorted((set(active or {}) | set(intervals or {})) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown data collector(s) {', '.join(unknown)} (known: {', '.join(NAMES)})")
    result = {name: dict(values) for name, values in recorded.items()}
    for key, values in (("active", active or {}), ("interval", intervals or {})):
        for name, value in values.items():
            result.setdefault(name, {})[key] = value
    return result


class CollectorFlags(Dict):
    """{collector: bool}; on the CLI ``name=bool,...`` where a value starting with t is true (Ganeti's)."""
    name = "collector=bool,..."
    schema = {"type": "object", "additionalProperties": {"type": "boolean"}}

    def check(self, value):
        value = super().check(value)
        if not all(isinstance(v, bool) for v in value.values()):
            raise ValueError("each collector's value must be a boolean")
        return value

    def parse(self, text):
        return self.check({key: str(value).lower().startswith("t") for key, value in super().parse(text).items()})


class CollectorIntervals(Dict):
    """{collector: microseconds}; on the CLI ``name=seconds,...`` (Ganeti's), each above zero."""
    name = "collector=seconds,..."
    schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}

    def check(self, value):
        value = super().check(value)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
            raise ValueError("each collector's interval must be a whole number of microseconds")
        if any(v <= 0 for v in value.values()):
            raise ValueError("Some interval times where not above zero.")
        return value

    def parse(self, text):
        try:
            return self.check({key: int(1e6 * float(value)) for key, value in super().parse(text).items()})
        except (TypeError, ValueError) as err:
            if "above zero" in str(err):
                raise
            raise ValueError(f"Can't transform all values to integers: {text}") from None


# Ganeti's names of the fields of a /proc/diskstats line, after major, minor and name
DISKSTATS_FIELDS = ("readsNum", "mergedReads", "secRead", "timeRead", "writes", "mergedWrites", "secWritten",
                    "timeWrite", "ios", "timeIO", "wIOmillis")


class NodeCollectors:
    """The active collectors of one node. A collector runs when asked, at most once per its
    interval: until the interval has passed since its last run, the report of that run is given
    again. So the interval is also the window of cpu-avg-load, the CPUs' busy share between two
    runs; a collector deactivated forgets its state."""

    def __init__(self, proc: Path = Path("/proc"), clock: Callable[[], float] = time.monotonic,
                 instances: Callable[[], dict] = dict, sys_net: Path = Path("/sys/class/net")):
        self._proc, self._clock = proc, clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, dict]] = {}       # name -> (clock, report)
        self._cpu_counters: list[tuple[int, int]] | None = None
        self._instances = instances
        self._usage = InstanceUsage(proc, sys_net)
        self._runs = {"cpu-avg-load": self._cpu_avg_load, "diskstats": self._diskstats,
                      INST_USAGE: lambda: self._usage.sample(self._instances(), self._clock())}

    def reports(self, settings: dict[str, dict]) -> dict[str, dict | None]:
        """{collector: {"timestamp", "data"} or None (nothing to collect here)} of the active ones."""
        out: dict[str, dict | None] = {}
        with self._lock:
            for name, wanted in sorted(settings.items()):
                if not wanted.get("active"):
                    self._forget(name)
                    continue
                run = self._runs.get(name)
                if run is None:
                    out[name] = None
                    continue
                now = self._clock()
                last = self._last.get(name)
                if last is None or now - last[0] >= wanted["interval"] / 1e6:
                    last = self._last[name] = (now, {"timestamp": time.time(), "data": run()})
                out[name] = last[1]
        return out

    def _forget(self, name: str) -> None:
        self._last.pop(name, None)
        if name == "cpu-avg-load":
            self._cpu_counters = None
        elif name == INST_USAGE:
            self._usage.forget()

    def _cpu_avg_load(self) -> dict:
        """Ganeti's cpu-avg-load: each CPU's busy share since the last run (since boot at the first)."""
        counters = []
        for line in (self._proc / "stat").read_text().splitlines():
            if line.startswith("cpu"):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)     # idle + iowait
                counters.append((sum(values) - idle, sum(values)))
        before = self._cpu_counters or [(0, 0)] * len(counters)
        self._cpu_counters = counters
        loads = [round((busy - b0) / (total - t0), 4) if total > t0 else 0.0
                 for (busy, total), (b0, t0) in zip(counters, before)]
        return {"cpu_number": len(loads) - 1, "cpus": loads[1:], "cpu_total": loads[0]}

    def _diskstats(self) -> list[dict]:
        """Ganeti's diskstats: one entry per block device, /proc/diskstats' counters by Ganeti's names."""
        devices = []
        for line in (self._proc / "diskstats").read_text().splitlines():
            parts = line.split()
            if len(parts) < 3 + len(DISKSTATS_FIELDS):
                continue
            devices.append({"major": int(parts[0]), "minor": int(parts[1]), "name": parts[2],
                            **{key: int(value) for key, value in zip(DISKSTATS_FIELDS, parts[3:])}})
        return devices
