"""The inst-usage data collector (genet.inst_usage) over fake /proc and /sys trees: rates between
two runs, a new process starting over, and its report through NodeCollectors and /metrics."""
from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry

from genet import collectors
from genet.inst_usage import InstanceUsage
from genet.rapi.metrics import collector_metrics

TICKS = 100
# /proc/stat: two CPUs; user nice system idle iowait irq softirq steal guest guest_nice
STAT = "cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 1\n"
MEMINFO = "MemTotal:        8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    6000000 kB\n"


class FakeNode:
    """A /proc and /sys/class/net tree whose counters a test moves on."""

    def __init__(self, root: Path):
        self.proc, self.net = root / "proc", root / "net"
        self.proc.mkdir()
        self.net.mkdir()
        (self.proc / "meminfo").write_text(MEMINFO)
        self.node_cpu(0, 0)

    def node_cpu(self, busy: int, idle: int) -> None:
        (self.proc / "stat").write_text(STAT.format(busy=busy, idle=idle))

    def process(self, pid: int, utime: int, stime: int, rss_kib: int, read: int, written: int) -> None:
        d = self.proc / str(pid)
        d.mkdir(exist_ok=True)
        # the name holds a space and a bracket: fields are counted after the last ")"
        (d / "stat").write_text(f"{pid} (qemu-system) x86) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 3 0\n")
        (d / "status").write_text(f"Name:\tqemu\nVmRSS:\t  {rss_kib} kB\n")
        (d / "io").write_text(f"rchar: 99999\nwchar: 99999\nread_bytes: {read}\nwrite_bytes: {written}\n")

    def tap(self, name: str, rx: int, tx: int) -> None:
        d = self.net / name / "statistics"
        d.mkdir(parents=True, exist_ok=True)
        (d / "rx_bytes").write_text(f"{rx}\n")
        (d / "tx_bytes").write_text(f"{tx}\n")


@pytest.fixture
def node(tmp_path):
    return FakeNode(tmp_path)


def test_rates_are_the_counters_moves_between_two_runs_over_the_time_between_them(node):
    """When 10 s pass, 25 s of CPU time is 2.5 CPUs, 60 MB read and written is 6 MB/s and 2 MB through
    the taps is 200 kB/s; the resident memory is read as it is."""
    usage = InstanceUsage(node.proc, node.net, ticks=TICKS)
    node.process(4242, 1000, 500, 2048, 0, 0)
    node.tap("gnt-t0001", 0, 0)
    sources = {"web1": {"pid": 4242, "taps": ["gnt-t0001"]}}
    first = usage.sample(sources, 100.0)
    assert first["instances"] == {} and first["interval"] is None       # a rate needs two readings
    assert first["node"] == {"cpus": 2, "cpu": None, "memory_total": 8_192_000_000,
                             "memory_used": 2_048_000_000}
    node.process(4242, 2000, 2000, 4096, 10_000_000, 50_000_000)
    node.tap("gnt-t0001", 1_500_000, 500_000)
    node.node_cpu(busy=1500, idle=500)
    second = usage.sample(sources, 110.0)
    assert second["interval"] == 10.0
    assert second["instances"] == {"web1": {"cpu": 2.5, "memory": 4096 * 1024, "disk": 6_000_000.0,
                                            "net": 200_000.0}}
    assert second["node"]["cpu"] == 1.5         # 75 % of 2 CPUs busy


def test_a_new_process_or_a_vanished_one_starts_over(node):
    """When an instance's pid changes (restarted) its old counters are not subtracted from the
    new ones; a process that is gone is left out."""
    usage = InstanceUsage(node.proc, node.net, ticks=TICKS)
    node.process(10, 100, 0, 1024, 0, 0)
    node.process(11, 100, 0, 1024, 0, 0)
    usage.sample({"a": {"pid": 10, "taps": []}, "b": {"pid": 11, "taps": []}}, 0.0)
    node.process(12, 5, 0, 1024, 0, 0)
    report = usage.sample({"a": {"pid": 12, "taps": []}, "b": {"pid": 99, "taps": []}}, 5.0)
    assert report["instances"] == {}
    node.process(12, 505, 0, 1024, 0, 0)
    assert usage.sample({"a": {"pid": 12, "taps": []}}, 10.0)["instances"]["a"]["cpu"] == 1.0


def test_the_collector_reports_inst_usage_once_per_its_interval_and_metrics_show_it(node):
    """NodeCollectors runs inst-usage over the instances its callback names, at most once per
    the collector's interval (60 s by default); /metrics shows each instance's figures."""
    now = [0.0]
    node.process(7, 0, 0, 512, 0, 0)
    sources = {"db1": {"pid": 7, "taps": []}}
    coll = collectors.NodeCollectors(node.proc, clock=lambda: now[0], instances=lambda: sources, sys_net=node.net)
    wanted = {collectors.INST_USAGE: collectors.settings({})[collectors.INST_USAGE]}
    assert wanted[collectors.INST_USAGE] == {"active": True, "interval": 60_000_000}
    coll.reports(wanted)
    node.process(7, 3000, 0, 512, 0, 0)          # 30 s of CPU
    now[0] = 59.0
    assert coll.reports(wanted)[collectors.INST_USAGE]["data"]["instances"] == {}    # the first report again
    now[0] = 60.0
    report = coll.reports(wanted)
    usage = report[collectors.INST_USAGE]["data"]["instances"]["db1"]
    assert usage["cpu"] == 0.5
    registry = CollectorRegistry()

    class Source:
        def collect(self):
            return collector_metrics({"node1": report})
    registry.register(Source())
    text = generate_latest(registry).decode()
    assert 'genet_instance_cpu{instance="db1",node="node1"} 0.5' in text
    assert 'genet_instance_memory_bytes{instance="db1",node="node1"} 524288.0' in text


def test_noded_measures_the_processes_its_hypervisors_name(tmp_path, monkeypatch):
    """genet-noded asks each of the cluster's hypervisors (ssconf hypervisor_list) for the
    processes to measure; the fake hypervisor has none."""
    from genet import paths
    from genet.noded import NodeProcedures
    with paths.acting_as(tmp_path, "node1"):
        paths.ensure_dirs()
        paths.ssconf_file("hypervisor_list").write_text("fake\nkvm\n")
        procs = NodeProcedures()
        seen = []
        for name, found in (("fake", {}), ("kvm", {"vm1": {"pid": 1, "taps": []}})):
            hv = type("Hv", (), {"usage_sources": lambda self, found=found, name=name: seen.append(name) or found})()
            procs._hypervisors[name] = hv
        assert procs._usage_sources() == {"vm1": {"pid": 1, "taps": []}}
        assert seen == ["fake", "kvm"]


def test_kvm_names_its_live_qemu_processes_with_their_taps(tmp_path):
    """The kvm backend reads pid and taps from each instance's runtime record, and names only
    a process that is alive and is the one that wrote the record's pid file."""
    import subprocess
    import sys
    from genet.hypervisor.kvm.backend import KvmHypervisor
    from genet.hypervisor.kvm.runtime import Files, Runtime
    hv = KvmHypervisor(run_dir=tmp_path / "run", log_dir=tmp_path / "log")
    files = Files("vm1", tmp_path / "run", tmp_path / "log")
    files.prepare()
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(files.pidfile)])
    try:
        layout = {"disks": [], "nics": [{"n": 0, "slot": 3, "nic": {}, "tap": "gnt-t0007"}]}
        files.save(Runtime("vm1", {}, "pc", "tcg", "qemu-system-x86_64", layout, pid=stand_in.pid))
        gone = Files("vm2", tmp_path / "run", tmp_path / "log")
        gone.save(Runtime("vm2", {}, "pc", "tcg", "qemu-system-x86_64", {"disks": [], "nics": []}, pid=stand_in.pid))
        assert hv.usage_sources() == {"vm1": {"pid": stand_in.pid, "taps": ["gnt-t0007"]}}
    finally:
        stand_in.kill()
        stand_in.wait()
