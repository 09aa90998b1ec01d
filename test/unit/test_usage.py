"""The master's usage history (genet.usage): bounded by age and count, loads from the trend
formula, kept across a restart (the master daemon's sampling: cmdlib/test_usage_sampling.py)."""
from __future__ import annotations

import pytest

from genet import usage
from genet.usage import UsageHistory

NODE = {"cpus": 4, "cpu": 2.0, "memory_total": 8_000_000_000, "memory_used": 2_000_000_000}


def report(timestamp: float, **instances) -> dict:
    return {"timestamp": timestamp, "data": {"interval": 60.0, "node": NODE, "instances": instances}}


def busy(cpu: float) -> dict:
    return {"cpu": cpu, "memory": 800_000_000, "disk": 50e6, "net": 12.5e6}


def test_a_sample_holds_loads_on_the_htools_scale():
    """CPUs busy over the node's CPUs, memory over the node's, disk per 100 MB/s and network per
    125 MB/s; the node's own CPU and memory shares beside."""
    history = UsageHistory()
    assert history.add("node1", report(1.0, web1=busy(1.0)), now=100.0) == 1
    assert history.snapshot()["instances"] == {"web1": [[100.0, "node1", 0.25, 0.1, 0.5, 0.1]]}
    assert history.snapshot()["nodes"] == {"node1": [[100.0, 0.5, 0.25]]}


def test_the_history_keeps_the_last_hour_and_at_most_max_samples():
    """When samples come every 5 s for two hours, what is kept is the last hour but no more than
    max_samples; an instance not seen for an hour is forgotten."""
    history = UsageHistory(keep=3600.0, max_samples=100)
    for k in range(1440):
        history.add("node1", report(k, web1=busy(1.0), **({"gone": busy(1.0)} if k < 10 else {})), now=5.0 * k)
    snap = history.snapshot()
    assert len(snap["instances"]["web1"]) == 100
    assert snap["instances"]["web1"][-1][0] == 5.0 * 1439
    assert "gone" not in snap["instances"]
    short = UsageHistory(keep=60.0, max_samples=1000)
    for k in range(100):
        short.add("node1", report(k, web1=busy(1.0)), now=5.0 * k)
    times = [s[0] for s in short.snapshot()["instances"]["web1"]]
    assert times[0] >= times[-1] - 60.0 and len(times) == 13


def test_a_report_given_again_within_its_interval_is_taken_once():
    history = UsageHistory()
    assert history.add("node1", report(7.0, web1=busy(1.0)), now=10.0) == 1
    assert history.add("node1", report(7.0, web1=busy(1.0)), now=20.0) == 0
    assert len(history.snapshot()["instances"]["web1"]) == 1


@pytest.mark.parametrize("values, expected", [
    ([0.2, 0.2, 0.2, 0.2], 0.2),                # steady: the mean
    ([0.0, 0.1, 0.2, 0.3], 0.3),                # climbing: the mean plus half the rise, the latest value
    ([0.3, 0.2, 0.1, 0.0], 0.15),               # falling: the mean only
    ([0.5], 0.5),
])
def test_the_trend_load_is_the_mean_plus_half_of_the_rise(values, expected):
    samples = [(60.0 * k, v) for k, v in enumerate(values)]
    assert usage.trend_load(samples) == pytest.approx(expected)


def test_loads_of_the_history_follow_the_trend_and_never_fall_below_the_floor():
    history = UsageHistory()
    for k, cpu in enumerate([0.4, 0.8, 1.2, 1.6]):          # of 4 CPUs: 0.1 .. 0.4
        history.add("node1", report(k, web1=busy(cpu), idle={"cpu": 0.0, "memory": 0, "disk": 0.0, "net": 0.0}),
                    now=60.0 * k)
    found = usage.loads(history.snapshot())
    assert found["web1"] == pytest.approx((0.4, 0.1, 0.5, 0.1))
    assert found["idle"] == (usage.MIN_LOAD,) * 4


def test_the_history_file_brings_back_what_is_still_recent(tmp_path):
    history = UsageHistory()
    history.add("node1", report(1.0, old=busy(1.0)), now=0.0)
    history.add("node1", report(2.0, web1=busy(1.0)), now=3000.0)
    history.save(tmp_path / "usage.json")
    back = UsageHistory.load(tmp_path / "usage.json", now=4000.0)
    assert list(back.snapshot()["instances"]) == ["web1"]
    (tmp_path / "bad.json").write_text("{not json")
    assert UsageHistory.load(tmp_path / "bad.json", now=0.0).snapshot()["instances"] == {}
