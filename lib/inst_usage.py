"""The inst-usage data collector: what each instance's process and the node really use.

Counters are read from /proc and /sys (paths passed in, so tests feed fake trees) and turned
into rates between two runs: the time between them is the clock's (passed in too). Per
instance, from its hypervisor process (QEMU's pid) and its taps:

- ``cpu``: CPUs busy, the process's user + system time per second (1.0 = one CPU all the time),
  from /proc/PID/stat;
- ``memory``: resident bytes (VmRSS of /proc/PID/status);
- ``disk``: bytes per second the process read and wrote to storage (read_bytes + write_bytes of
  /proc/PID/io);
- ``net``: bytes per second through its taps (rx_bytes + tx_bytes of
  /sys/class/net/TAP/statistics); 0 without taps.

And for the node: its CPUs, how many of them were busy (from /proc/stat), its memory and the
part in use (MemTotal - MemAvailable of /proc/meminfo). An instance appears from its second
run on (a rate needs two readings); a new process (another pid) starts over.
"""
from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:             # the process ended, or the file is not ours to read
        return None


def _fields(text: str | None) -> dict[str, str]:
    """"Key: value" lines (/proc/PID/status, /proc/PID/io, /proc/meminfo)."""
    out = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


class InstanceUsage:
    """Rates between consecutive ``sample`` calls. Not thread-safe (NodeCollectors locks)."""

    def __init__(self, proc: Path = Path("/proc"), sys_net: Path = Path("/sys/class/net"),
                 ticks: int = CLOCK_TICKS):
        self._proc, self._sys_net, self._ticks = proc, sys_net, ticks
        self.forget()

    def forget(self) -> None:
        self._when: float | None = None
        self._node_cpu: tuple[int, int] | None = None       # (busy, total) ticks of all CPUs
        self._counters: dict[str, tuple[int, float, int, int]] = {}   # name -> (pid, cpu s, disk B, net B)

    def sample(self, sources: dict[str, dict], now: float) -> dict:
        """The report of one run. ``sources``: {instance: {"pid", "taps"}} of the processes this
        node runs (Hypervisor.usage_sources)."""
        elapsed = None if self._when is None else now - self._when
        self._when = now
        cpus, busy_total = self._node_cpu_counters()
        node_cpu = None
        if self._node_cpu is not None and busy_total[1] > self._node_cpu[1]:
            node_cpu = round(cpus * (busy_total[0] - self._node_cpu[0]) / (busy_total[1] - self._node_cpu[1]), 4)
        self._node_cpu = busy_total
        mem = _fields(_read(self._proc / "meminfo"))
        total = _kib(mem.get("MemTotal"))
        available = _kib(mem.get("MemAvailable", mem.get("MemFree")))
        instances, counters = {}, {}
        for name, source in sorted(sources.items()):
            pid = int(source.get("pid") or 0)
            read = self._process(pid, source.get("taps") or [])
            if read is None:
                continue
            cpu_s, rss, disk_b, net_b = read
            counters[name] = (pid, cpu_s, disk_b, net_b)
            before = self._counters.get(name)
            if before is None or before[0] != pid or not elapsed or elapsed <= 0:
                continue
            instances[name] = {"cpu": round(max(0.0, cpu_s - before[1]) / elapsed, 4), "memory": rss,
                               "disk": round(max(0, disk_b - before[2]) / elapsed, 1),
                               "net": round(max(0, net_b - before[3]) / elapsed, 1)}
        self._counters = counters
        return {"interval": elapsed, "instances": instances,
                "node": {"cpus": cpus, "cpu": node_cpu, "memory_total": total,
                         "memory_used": None if total is None or available is None else total - available}}

    def _node_cpu_counters(self) -> tuple[int, tuple[int, int]]:
        cpus, busy_total = 0, (0, 0)
        for line in (_read(self._proc / "stat") or "").splitlines():
            if line.startswith("cpu "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)    # idle + iowait
                busy_total = (sum(values[:8]) - idle, sum(values[:8]))     # guest time is in user already
            elif line.startswith("cpu"):
                cpus += 1
        return cpus, busy_total

    def _process(self, pid: int, taps: list[str]) -> tuple[float, int, int, int] | None:
        """(CPU seconds, resident bytes, storage bytes, tap bytes) of a process; None if it is gone."""
        if pid <= 0:
            return None
        stat = _read(self._proc / str(pid) / "stat")
        if stat is None:
            return None
        after_name = stat[stat.rfind(")") + 2:].split()       # the name may hold spaces and brackets
        cpu_s = (int(after_name[11]) + int(after_name[12])) / self._ticks      # utime, stime (fields 14, 15)
        rss = (_kib(_fields(_read(self._proc / str(pid) / "status")).get("VmRSS")) or 0)
        io = _fields(_read(self._proc / str(pid) / "io"))
        disk_b = int(io.get("read_bytes", 0)) + int(io.get("write_bytes", 0))
        net_b = 0
        for tap in taps:
            for counter in ("rx_bytes", "tx_bytes"):
                value = _read(self._sys_net / tap / "statistics" / counter)
                net_b += int(value) if value and value.strip().isdigit() else 0
        return cpu_s, rss, disk_b, net_b


def _kib(value: str | None) -> int | None:
    """"123 kB" as bytes."""
    if not value:
        return None
    return int(value.split()[0]) * 1024
