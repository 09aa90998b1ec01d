"""gnt-cluster epo --on's wait for the nodes (genet.cli.cluster_epo.when_reachable), with a
fake clock and a fake ping."""
from __future__ import annotations

from genet.cli.cluster_epo import when_reachable
from genet.clock import ManualClock

ADDRESSES = {"node1": "10.0.0.1", "node2": "10.0.0.2", "node3": "10.0.0.3"}


def test_instances_start_as_their_nodes_come_back_one_look_after_another(capsys):
    """When nodes answer one after the other, the action sees each new set of nodes up, the
    wait ends when all answered, and no interval passes while nodes keep answering."""
    clock = ManualClock()
    answering = {"10.0.0.1"}
    seen = []

    def action(up):
        seen.append(sorted(up))
        if up == {"node1"}:
            answering.update({"10.0.0.2", "10.0.0.3"})
        return True
    assert when_reachable(ADDRESSES, 1811, action, ping=lambda address, port: address in answering, clock=clock)
    assert seen == [[], ["node1"], ["node1", "node2"], ["node1", "node2", "node3"]]
    assert clock.time() == ManualClock().time()
    assert capsys.readouterr().out.splitlines() == [f"Node {n} became available" for n in ("node1", "node2", "node3")]


def test_a_node_that_never_answers_ends_the_wait_with_its_name_and_a_failure(capsys):
    clock = ManualClock()
    start = clock.time()
    assert not when_reachable(ADDRESSES, 1811, lambda up: True, interval=30, timeout=120,
                              ping=lambda address, port: address != "10.0.0.3", clock=clock)
    assert "Time exceeded while waiting for nodes to become reachable again:\n  - node3" in capsys.readouterr().err
    assert 120 <= clock.time() - start <= 150


def test_a_failed_action_makes_the_whole_wait_fail_but_it_goes_on():
    calls = []
    assert not when_reachable({"node2": "10.0.0.2"}, 1811, lambda up: calls.append(up) or not up,
                              ping=lambda address, port: True, clock=ManualClock())
    assert calls == [set(), {"node2"}]
