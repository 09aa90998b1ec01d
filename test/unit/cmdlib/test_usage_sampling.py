"""The master daemon's usage sampling (genet.usage.UsageSampler) in the in-process cluster: one
round asks every online node for its inst-usage report, and luxi's QueryUsage answers the history."""
from __future__ import annotations

from genet import collectors

NODE = {"cpus": 4, "cpu": 2.0, "memory_total": 8_000_000_000, "memory_used": 2_000_000_000}


def busy(cpu: float) -> dict:
    return {"cpu": cpu, "memory": 800_000_000, "disk": 50e6, "net": 12.5e6}


def test_a_sampling_round_asks_every_online_node_for_inst_usage_and_skips_one_that_fails(cluster):
    """When the master daemon samples, each online node is asked for the inst-usage report only;
    a node that does not answer adds nothing, and QueryUsage answers the history."""
    from genet.masterd import LuxiHandlers
    from genet.opcodes import OpClusterSetParams, OpNodeSetParams
    answers = {"node1": {"db1": busy(2.0)}, "node2": {"web1": busy(1.0)}}
    for name, node in cluster.nodes.items():
        node.procs._collectors = FakeCollectors(name, answers.get(name, {}))
    cluster.run(OpNodeSetParams(node_name="node3", offline=True))
    cluster.nodes["node2"].reachable = False
    sampler = cluster.ctx.usage
    assert sampler.round() == 1
    cluster.nodes["node2"].reachable = True
    cluster.clock.advance(60)
    assert sampler.round() == 2
    asked = {name: node.procs._collectors.asked for name, node in cluster.nodes.items()}
    assert asked["node3"] == [] and all(list(s) == [collectors.INST_USAGE] for s in asked["node1"])
    snap = LuxiHandlers(cluster.ctx).QueryUsage()
    assert [s[1] for s in snap["instances"]["db1"]] == ["node1", "node1"]
    assert [s[1] for s in snap["instances"]["web1"]] == ["node2"]
    assert snap["instances"]["db1"][1][0] - snap["instances"]["db1"][0][0] == 60
    cluster.run(OpClusterSetParams(enabled_data_collectors={collectors.INST_USAGE: False}))
    cluster.clock.advance(60)
    assert sampler.round() == 0


class FakeCollectors:
    """A node's collectors answering a fixed inst-usage report, a new one at each call."""

    def __init__(self, name: str, instances: dict):
        self.name, self.instances, self.asked = name, instances, []

    def reports(self, settings):
        self.asked.append(settings)
        data = {"interval": 60.0, "node": NODE, "instances": self.instances}
        return {collectors.INST_USAGE: {"timestamp": float(len(self.asked)), "data": data}}


class ClockStop:
    """A stop event whose wait moves the cluster's clock and ends the loop after ``rounds`` waits."""

    def __init__(self, clock, rounds: int, on_wait=None):
        self.clock, self.left, self.on_wait, self.waits = clock, rounds, on_wait, []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        self.left -= 1
        if self.on_wait:
            self.on_wait(len(self.waits))
        return self.left <= 0


def test_the_sampling_loop_takes_a_round_per_interval_and_follows_a_changed_interval(cluster):
    """When the interval is 60 s, the loop looks again every 5 s but samples once a minute;
    set to 10 s, the next round comes within 5 s of the change."""
    from genet.opcodes import OpClusterSetParams
    rounds = []
    sampler = cluster.ctx.usage
    sampler.round = lambda: rounds.append(cluster.clock.monotonic()) or 0
    start = cluster.clock.monotonic()

    def change(waits):
        if waits == 24:         # two minutes in
            cluster.run(OpClusterSetParams(data_collector_interval={collectors.INST_USAGE: 10_000_000}))
    sampler.run(ClockStop(cluster.clock, 36, change), recheck=5.0)
    assert [r - start for r in rounds] == [0.0, 60.0, 120.0, 130.0, 140.0, 150.0, 160.0, 170.0]
