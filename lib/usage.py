"""The master's short history of what nodes and instances really use, and the loads the
htools read from it.

Samples flow: each node's inst-usage collector (genet.inst_usage) measures its instances'
processes; the master daemon asks every online node for that report once per the
collector's interval (``gnt-cluster modify --data-collector-interval inst-usage=SECONDS``,
60 s by default; no sampling while the collector is deactivated) and appends one sample per
node and per instance here. The history keeps, per node and per instance, the samples of the
last KEEP seconds, MAX_SAMPLES at most (an hour: 60 samples at the default interval, 720 at
5 s). It is written to a file in the master's data directory after each round, so a restarted
master daemon keeps it, and read over luxi (QueryUsage) by hbal --mond and the automatic
balancing.

A sample holds loads as the htools use them (Ganeti's dynamic utilisation: numbers on one
scale for all instances, mostly between 0 and 1):

- cpu: CPUs busy / the node's CPUs (the share of its node's processing the instance takes, as
  Ganeti's cpu-avg-load spread over a node's instances);
- mem: resident memory / the node's memory;
- disk, net: bytes per second / DISK_SCALE, NET_SCALE (a fixed reference: disks and links have
  no capacity genet can read).

An instance's load over the window (``load``) is its mean plus TREND_WEIGHT times how much it
rose over the window: mean + TREND_WEIGHT * max(0, slope) * span, with slope the least-squares
slope of the samples over time and span the time between the first and the last. With the
weight 0.5 a load that climbs steadily counts as its latest value, a steady one as its mean,
and a falling one as its mean (a fall is not trusted to last). Loads below MIN_LOAD count as
MIN_LOAD, as Ganeti advises against zero loads (secondaries would no longer be spread).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from pathlib import Path

KEEP = 3600.0                   # seconds of history
MAX_SAMPLES = 720               # per node and per instance (an hour at 5 s)
DISK_SCALE = 100e6              # bytes/s that count as a disk load of 1
NET_SCALE = 125e6               # bytes/s that count as a network load of 1 (a gigabit link)
TREND_WEIGHT = 0.5
MIN_LOAD = 0.01
RECHECK = 5.0                   # seconds between two looks at the sampling interval
METRICS = ("cpu", "mem", "disk", "net")

log = logging.getLogger("genet-masterd")


def instance_loads(measured: dict, node: dict) -> tuple[float, float, float, float] | None:
    """An inst-usage measure ({"cpu", "memory", "disk", "net"}) as loads on the htools' scale,
    given its node's part of the report; None when the node's size is unknown."""
    cpus, memory = node.get("cpus"), node.get("memory_total")
    if not cpus or not memory:
        return None
    return (round(measured["cpu"] / cpus, 6), round(measured["memory"] / memory, 6),
            round(measured["disk"] / DISK_SCALE, 6), round(measured["net"] / NET_SCALE, 6))


def node_loads(node: dict) -> tuple[float, float] | None:
    """The node's busy CPU share and used memory share, None before its second report."""
    if node.get("cpu") is None or not node.get("cpus") or not node.get("memory_total") \
            or node.get("memory_used") is None:
        return None
    return round(node["cpu"] / node["cpus"], 6), round(node["memory_used"] / node["memory_total"], 6)


def trend_load(samples: list[list[float]], weight: float = TREND_WEIGHT) -> float:
    """mean + weight * max(0, least-squares slope) * span of [(time, value), ...]."""
    n = len(samples)
    if not n:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread <= 0:
        return mean_v
    slope = sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread
    span = samples[-1][0] - samples[0][0]
    return mean_v + weight * max(0.0, slope) * span


class UsageHistory:
    """Samples per node ([time, cpu, mem]) and per instance ([time, node, cpu, mem, disk, net])."""

    def __init__(self, keep: float = KEEP, max_samples: int = MAX_SAMPLES):
        self.keep, self.max_samples = keep, max_samples
        self._lock = threading.Lock()
        self.nodes: dict[str, deque] = {}
        self.instances: dict[str, deque] = {}
        self._seen: dict[str, float] = {}      # node -> timestamp of the last report taken

    def add(self, node: str, report: dict, now: float) -> int:
        """Take a node's inst-usage report ({"timestamp", "data"}) as the samples at ``now``; a
        report already taken (the collector answered again within its interval) is skipped. The
        number of instance samples added."""
        with self._lock:
            if report is None or self._seen.get(node) == report.get("timestamp"):
                return 0
            self._seen[node] = report.get("timestamp")
            data = report["data"]
            added = 0
            loads = node_loads(data["node"])
            if loads is not None:
                self._append(self.nodes, node, [now, *loads])
            for name, measured in sorted(data["instances"].items()):
                inst = instance_loads(measured, data["node"])
                if inst is not None:
                    self._append(self.instances, name, [now, node, *inst])
                    added += 1
            self._prune(now)
            return added

    def _append(self, table: dict[str, deque], key: str, sample: list) -> None:
        table.setdefault(key, deque(maxlen=self.max_samples)).append(sample)

    def _prune(self, now: float) -> None:
        for table in (self.nodes, self.instances):
            for key in list(table):
                samples = table[key]
                while samples and samples[0][0] < now - self.keep:
                    samples.popleft()
                if not samples:
                    del table[key]

    def snapshot(self) -> dict:
        """The history as JSON data (what QueryUsage answers and the file holds)."""
        with self._lock:
            return {"keep": self.keep, "max_samples": self.max_samples,
                    "nodes": {k: list(map(list, v)) for k, v in sorted(self.nodes.items())},
                    "instances": {k: list(map(list, v)) for k, v in sorted(self.instances.items())}}

    @classmethod
    def from_snapshot(cls, data: dict, now: float, keep: float = KEEP, max_samples: int = MAX_SAMPLES):
        history = cls(keep, max_samples)
        for table, key in ((history.nodes, "nodes"), (history.instances, "instances")):
            for name, samples in (data.get(key) or {}).items():
                table[name] = deque(samples[-max_samples:], maxlen=max_samples)
        history._prune(now)
        return history

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, now: float) -> "UsageHistory":
        """The history a previous master daemon on this node wrote, what is still recent of it."""
        try:
            return cls.from_snapshot(json.loads(path.read_text()), now)
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()


def loads(snapshot: dict, weight: float = TREND_WEIGHT) -> dict[str, tuple[float, float, float, float]]:
    """Each instance's load (cpu, mem, disk, net) over the history's window: the trend formula of
    the module's docstring, floored at MIN_LOAD."""
    out = {}
    for name, samples in (snapshot.get("instances") or {}).items():
        if samples:
            out[name] = tuple(round(max(MIN_LOAD, trend_load([(s[0], s[2 + k]) for s in samples], weight)), 6)
                              for k in range(len(METRICS)))
    return out


class UsageSampler:
    """The master daemon's sampling: one round asks every online node for its inst-usage report
    and adds it to ``history``. ``rpc``, ``cfg`` and ``clock`` are the master context's."""

    def __init__(self, history: UsageHistory, rpc, cfg, clock, path: Path | None = None):
        self.history, self.rpc, self.cfg, self.clock, self.path = history, rpc, cfg, clock, path

    def setting(self) -> dict:
        from genet import collectors
        return self.cfg.read(lambda d: collectors.settings(d.cluster.data_collectors)[collectors.INST_USAGE])

    def round(self) -> int:
        """One round; the number of instance samples taken (0 while inst-usage is off)."""
        from genet import collectors
        setting = self.setting()
        if not setting["active"]:
            return 0
        nodes = self.cfg.read(lambda d: {n["name"]: n["primary_ip"] for n in d.nodes.values() if not n["offline"]})
        results = self.rpc.data_collectors.on(nodes, {collectors.INST_USAGE: setting})
        now = self.clock.time()
        added = 0
        for name, res in sorted(results.items()):
            if res.failed:
                log.debug("inst-usage: no report from %s: %s", name, res.error)
                continue
            added += self.history.add(name, (res.payload or {}).get(collectors.INST_USAGE), now)
        if self.path is not None:
            try:
                self.history.save(self.path)
            except OSError as err:
                log.warning("usage history not written to %s: %s", self.path, err)
        return added

    def run(self, stop: threading.Event, recheck: float = RECHECK) -> None:
        """Rounds until ``stop`` is set, one per the collector's interval; the interval is read
        again every ``recheck`` seconds, so a change takes effect without waiting out the old one."""
        last = None
        while True:
            wait = recheck
            try:
                interval = self.setting()["interval"] / 1e6
                now = self.clock.monotonic()
                if last is None or now - last >= interval:
                    last = now
                    self.round()
                wait = min(recheck, max(0.0, last + interval - self.clock.monotonic()))
            except Exception:           # a bad answer must not end the sampling for good
                log.exception("usage sampling round failed")
            if stop.wait(wait):
                return
