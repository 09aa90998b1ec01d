"""gnt-cluster modify --auto-balance*, run in-process: the settings are kept with their
defaults, shown by info, refused out of range; and the watcher's balancing round (what it
plans) obeys them: threshold, moves per round, instances tagged to stay, unavailable nodes."""
from __future__ import annotations

from pathlib import Path

import pytest

from genet import autobalance, watcher
from genet.htools import text
from genet.opcodes import OpClusterQuery, OpClusterSetParams


def test_auto_balance_is_off_by_default_and_its_settings_are_kept_and_shown(cluster):
    assert cluster.run(OpClusterQuery())["auto_balance"] == autobalance.DEFAULTS
    assert autobalance.DEFAULTS["enabled"] is False
    cluster.run(OpClusterSetParams(auto_balance=True, auto_balance_max_moves=3))
    cluster.run(OpClusterSetParams(auto_balance_interval=90, auto_balance_threshold=0.5))
    assert cluster.run(OpClusterQuery())["auto_balance"] == {
        "enabled": True, "interval": 90, "threshold": 0.5, "max_moves": 3, "max_migrations": 2,
        "usage": False}
    cluster.run(OpClusterSetParams(auto_balance=False))
    assert cluster.data().cluster.auto_balance["enabled"] is False
    assert cluster.data().cluster.auto_balance["max_moves"] == 3


@pytest.mark.parametrize("option, value", [("auto_balance_interval", 0), ("auto_balance_max_moves", 1001),
                                           ("auto_balance_max_migrations", 0), ("auto_balance_threshold", -1.0)])
def test_settings_out_of_range_are_refused(option, value):
    with pytest.raises(Exception, match="must be at"):
        OpClusterSetParams(**{option: value}).validate()


def test_a_round_is_due_only_when_on_and_the_interval_has_passed():
    config = {**autobalance.DEFAULTS, "interval": 30}
    assert not autobalance.due(config, None, 1000.0)
    config["enabled"] = True
    assert autobalance.due(config, None, 1000.0)
    assert not autobalance.due(config, 1000.0, 1000.0 + 29 * 60)
    assert autobalance.due(config, 1000.0, 1000.0 + 30 * 60)


# four nodes, six mirrored instances piled on node1 (copies on node2); web1 is tagged to stay
PILED = """default|g1|preferred||

node1|65536|1024|40960|409600|300000|16|N|g1|1||N|0|1|1.0
node2|65536|1024|65536|409600|300000|16|N|g1|1||N|0|1|1.0
node3|65536|1024|65536|409600|409600|16|N|g1|1||N|0|1|1.0
node4|65536|1024|65536|409600|409600|16|N|g1|1||N|0|1|1.0

web1|4096|10240|2|running|Y|node1|node2|drbd|genet:auto-balance:stay|1|-|N
web2|4096|10240|2|running|Y|node1|node2|drbd||1|-|N
web3|4096|10240|2|running|Y|node1|node2|drbd||1|-|N
web4|4096|10240|2|running|Y|node1|node2|drbd||1|-|N
web5|4096|10240|2|running|Y|node1|node2|drbd||1|-|N
web6|4096|10240|2|running|Y|node1|node2|drbd||1|-|N

"""


def planned(config_changes: dict, data=PILED):
    config = {**autobalance.DEFAULTS, "enabled": True, **config_changes}
    st, steps = autobalance.plan(text.parse(data), config)
    return [(s.inst.name, st.node_names[s.new_p], st.node_names[s.new_s]) for s in steps]


def test_a_round_spreads_piled_instances_but_never_the_one_tagged_to_stay():
    moves = planned({})
    assert moves and len(moves) <= autobalance.DEFAULTS["max_moves"]
    assert "web1" not in {name for name, _, _ in moves}
    assert {p for _, p, _ in moves} - {"node1"}


def test_a_round_makes_at_most_max_moves_and_nothing_below_the_threshold():
    assert len(planned({"max_moves": 2})) == 2
    assert planned({"threshold": 1000.0}) == []


def test_instances_of_a_drained_or_offline_node_stay_and_nothing_moves_there():
    data = PILED.replace("node3|65536|1024|65536|409600|409600|16|N|", "node3|65536|1024|65536|409600|409600|16|Y|")
    moves = planned({}, data)
    assert moves and all("node3" not in (p, s) for _, p, s in moves)
    on_offline_node = PILED.replace("web6|4096|10240|2|running|Y|node1|node2|", "web6|4096|10240|2|running|Y|node3|node2|")
    on_offline_node = on_offline_node.replace("node3|65536|1024|65536|409600|409600|16|N|",
                                              "node3|65536|1024|65536|409600|409600|16|Y|")
    assert "web6" not in {name for name, _, _ in planned({}, on_offline_node)}


def test_the_watcher_runs_a_round_only_when_due(monkeypatch):
    rounds = []

    class Client:
        def call(self, method):
            assert method == "QueryClusterInfo"
            return {"auto_balance": {**autobalance.DEFAULTS, "enabled": True, "interval": 10}}
    monkeypatch.setattr(autobalance, "run_round", lambda client, config: rounds.append(config) or 0)
    monkeypatch.setattr(watcher, "save_state", lambda state: None)
    state = {"restarts": {}}
    watcher.balance(Client(), state, 5000.0)
    watcher.balance(Client(), state, 5000.0 + 599)
    watcher.balance(Client(), state, 5000.0 + 600)
    assert len(rounds) == 2 and state["auto_balance_last"] == 5600.0


# four alike nodes, mirrored instances spread evenly by size; node1's two keep its CPUs busy
EVEN = (Path(__file__).resolve().parents[1] / "data" / "even-four-nodes.data").read_text()
BUSY_NODE1 = {"keep": 3600.0, "max_samples": 720, "nodes": {}, "instances": {
    name: [[60.0 * k, "node" + "1234"["abcd".index(name[0])], 0.85 if name[0] == "a" else 0.05, 0.05, 0.02, 0.01]
           for k in range(5)] for name in ("a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2")}}


def test_auto_balance_usage_is_a_setting_of_its_own_off_by_default(cluster):
    assert cluster.run(OpClusterQuery())["auto_balance"]["usage"] is False
    cluster.run(OpClusterSetParams(auto_balance_usage=True))
    assert cluster.run(OpClusterQuery())["auto_balance"] == {**autobalance.DEFAULTS, "usage": True}


@pytest.mark.parametrize("usage", [False, True])
def test_a_round_by_usage_moves_a_busy_instance_and_otherwise_reads_no_history(monkeypatch, usage):
    """When the group is even by size a round makes no move; with usage on it reads the master's
    usage history and moves one of node1's busy instances off node1."""
    from genet.htools import execute, live
    asked, made = [], []

    class Client:
        def call(self, method):
            asked.append(method)
            return BUSY_NODE1
    monkeypatch.setattr(live, "read", lambda client: text.parse(EVEN))
    monkeypatch.setattr(execute, "carry_out", lambda client, st, steps, *a, **k: made.extend(
        (s.inst.name, st.node_names[s.old_p], st.node_names[s.new_p]) for s in steps) or len(steps))
    config = {**autobalance.DEFAULTS, "enabled": True, "threshold": 0.1, "usage": usage}
    done = autobalance.run_round(Client(), config)
    if not usage:
        assert (done, asked, made) == (0, [], [])
        return
    assert asked == ["QueryUsage"] and done == len(made) >= 1
    name, old_p, new_p = made[0]
    assert name in ("a1", "a2") and old_p == "node1" and new_p != "node1"


def test_a_round_by_usage_without_a_history_scores_by_declared_sizes(monkeypatch, caplog):
    from genet import errors
    from genet.htools import live

    class Client:
        def call(self, method):
            raise errors.LuxiError("unknown method QueryUsage")
    monkeypatch.setattr(live, "read", lambda client: text.parse(EVEN))
    config = {**autobalance.DEFAULTS, "enabled": True, "threshold": 0.1, "usage": True}
    assert autobalance.run_round(Client(), config) == 0
    assert "no usage history (unknown method QueryUsage): scoring by declared sizes" in caplog.text
