"""Ganeti's data collectors on a node (genet.collectors.NodeCollectors) and their metrics in RAPI's
/metrics: a collector runs at most once per its interval, a deactivated one reports nothing."""
from __future__ import annotations

import pytest
from prometheus_client.core import CollectorRegistry
from prometheus_client import generate_latest

from genet import collectors
from genet.rapi.metrics import collector_metrics

STAT = "cpu  {0} 0 0 {1} 0 0 0 0 0 0\ncpu0 {0} 0 0 {1} 0 0 0 0 0 0\nintr 1\n"
DISKS = "   8       0 vda 10 1 80 5 20 2 160 9 0 12 14 0 0 0 0\n"


@pytest.fixture
def proc(tmp_path):
    (tmp_path / "stat").write_text(STAT.format(100, 300))
    (tmp_path / "diskstats").write_text(DISKS)
    return tmp_path


def settings(**changes) -> dict:
    return {name: {**values, **changes.get(name.replace("-", "_"), {})}
            for name, values in collectors.settings({}).items()}


def test_cpu_load_is_the_busy_share_since_the_last_run_and_runs_once_per_interval(proc):
    """When asked again within the interval the last report comes back; after it, the load is
    the CPUs' busy share between the two runs."""
    now = [0.0]
    node = collectors.NodeCollectors(proc, clock=lambda: now[0])
    first = node.reports(settings())
    assert first["cpu-avg-load"]["data"] == {"cpu_number": 1, "cpus": [0.25], "cpu_total": 0.25}
    (proc / "stat").write_text(STAT.format(400, 400))          # 300 busy of 400 more
    now[0] = 4.9
    assert node.reports(settings()) == first
    now[0] = 5.0
    assert node.reports(settings())["cpu-avg-load"]["data"]["cpu_total"] == 0.75
    now[0] = 5.5
    faster = settings(cpu_avg_load={"interval": 400_000})
    assert node.reports(faster)["cpu-avg-load"]["data"]["cpu_total"] == 0.0       # nothing moved since


def test_diskstats_reads_the_devices_by_ganetis_field_names_and_others_report_nothing(proc):
    reports = collectors.NodeCollectors(proc).reports(settings())
    [vda] = reports["diskstats"]["data"]
    assert (vda["name"], vda["readsNum"], vda["secWritten"], vda["timeIO"]) == ("vda", 10, 160, 12)
    assert {name for name, report in reports.items() if report is None} == \
        {"drbd", "inst-status-xen", "lv", "xen-cpu-avg-load"}


def test_a_deactivated_collector_does_not_run_and_starts_over_when_active_again(proc):
    node = collectors.NodeCollectors(proc, clock=lambda: 0.0)
    node.reports(settings())
    off = node.reports(settings(cpu_avg_load={"active": False}))
    assert "cpu-avg-load" not in off and "diskstats" in off
    (proc / "stat").write_text(STAT.format(400, 400))
    assert node.reports(settings())["cpu-avg-load"]["data"]["cpu_total"] == 0.5     # since boot again


def test_metrics_show_the_active_collectors_per_node_and_nothing_of_the_others(proc):
    reports = collectors.NodeCollectors(proc).reports(settings(diskstats={"active": False}))
    registry = CollectorRegistry()

    class Source:
        def collect(self):
            return collector_metrics({"node1": reports, "node2": None})
    registry.register(Source())
    text = generate_latest(registry).decode()
    assert 'genet_node_cpu_load{cpu="total",node="node1"} 0.25' in text
    assert 'genet_node_cpu_load{cpu="0",node="node1"} 0.25' in text
    assert "genet_node_disk" not in text and "node2" not in text


def test_the_cli_forms_are_ganetis_booleans_and_seconds():
    assert collectors.CollectorFlags().parse("lv=false,drbd=True,diskstats=no") == \
        {"lv": False, "drbd": True, "diskstats": False}
    assert collectors.CollectorIntervals().parse("cpu-avg-load=2.5") == {"cpu-avg-load": 2_500_000}
    with pytest.raises(ValueError, match="not above zero"):
        collectors.CollectorIntervals().parse("lv=0")
    with pytest.raises(ValueError, match="Can't transform all values to integers"):
        collectors.CollectorIntervals().parse("lv=soon")
