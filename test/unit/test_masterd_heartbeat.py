"""The master's heartbeat, in-process with a recorded RPC: it stops what a node that was cut off
runs but the config places elsewhere, and it keeps (or loses) the master's read lease."""
from __future__ import annotations

import threading

import pytest

from genet import config, errors, paths
from genet.clock import ManualClock
from genet.config_writer import ConfigWriter
from genet.masterd import READ_LEASE, MasterContext
from genet.queue_store import QueueStore

from fake_rpc import FakeTransport


class Nodes:
    """Answers heartbeats as each node is set to; records every stop_strays."""

    def __init__(self):
        self.heartbeat: dict[str, object] = {}      # node -> answer, or an error
        self.stops: list[tuple[str, list]] = []
        self.during_stop = lambda: None             # what happens elsewhere while a node stops strays
        self.during_heartbeat = lambda node: None   # ... while a node's heartbeat is under way

    def __call__(self, node, procedure, args):
        if procedure == "heartbeat":
            self.during_heartbeat(node)
            answer = self.heartbeat.get(node, {"master": "node1", "epoch": 0, "cut_off": False})
            if isinstance(answer, errors.GenericError):
                raise answer
            return answer
        assert procedure == "stop_strays"
        self.stops.append((node, sorted(args[1])))
        self.during_stop()
        return []


@pytest.fixture
def ctx(node_env):
    paths.ensure_dirs()
    data = config.new_cluster("c1", "node1", "127.0.0.11")
    for index in (2, 3):
        config.add_node(data, f"node{index}", f"127.0.0.1{index}", master_candidate=True)
    for name, primary in (("on1", "node1"), ("on2", "node2"), ("on3", "node3")):
        data["instances"][name] = {"name": name, "uuid": f"uuid-{name}", "primary_node": primary,
                                   "disk_template": "diskless"}
    config.write_atomic(paths.config_file(), config.dumps(data))
    nodes = Nodes()
    master = MasterContext("node1", ConfigWriter(paths.config_file()), FakeTransport(nodes),
                           QueueStore(paths.queue_db()), clock=ManualClock(), workers=1)
    master.nodes = nodes
    master.cfg.set_replicator(None)                       # config changes stay local here
    master._resync = lambda name: None      # a candidate that missed a round catches up: tested below
    yield master
    master.stop()


def test_a_node_that_missed_a_heartbeat_has_its_strays_stopped_when_it_answers(ctx):
    """When node2 does not answer a round, nothing is asked of it; when it answers the next
    one, it is told to keep only the instances placed on it, once."""
    ctx.nodes.heartbeat["node2"] = errors.RpcError("node node2 unreachable")
    ctx.heartbeat_round()
    assert ctx.nodes.stops == []
    del ctx.nodes.heartbeat["node2"]
    ctx.heartbeat_round()
    ctx.heartbeat_round()
    assert ctx.nodes.stops == [("node2", ["on2"])]


def test_a_node_that_says_it_was_cut_off_has_its_strays_stopped(ctx):
    """When node3 answers that it was cut off (it heard no heartbeat for a while), it is told to
    keep only the instances placed on it, even though this master saw no failed round."""
    ctx.nodes.heartbeat["node3"] = {"master": "node1", "epoch": 0, "cut_off": True}
    ctx.heartbeat_round()
    assert ctx.nodes.stops == [("node3", ["on3"])]


def test_a_node_set_offline_while_its_heartbeat_is_under_way_is_not_called_again(ctx):
    """A partitioned node answers a round's call when its link comes back; if it was set offline
    meanwhile the master leaves its instances alone (it does not call an offline node) until it
    is set online again."""
    def set_offline(node):
        if node == "node3":
            ctx.cfg.update(lambda d: d.nodes["node3"].update(offline=True))
    ctx.nodes.during_heartbeat = set_offline
    ctx.nodes.heartbeat["node3"] = {"master": "node1", "epoch": 0, "cut_off": True}
    ctx.heartbeat_round()
    ctx.heartbeat_round()
    assert ctx.nodes.stops == []
    ctx.nodes.during_heartbeat = lambda node: None
    ctx.cfg.update(lambda d: d.nodes["node3"].update(offline=False))
    ctx.heartbeat_round()
    assert ctx.nodes.stops == [("node3", ["on3"])]


def test_an_instance_a_job_is_moving_to_a_node_is_kept_there_until_the_move_ends(ctx):
    """When a migration brings on3 up on node2 before the config places it there, a stop of
    node2's strays keeps it, and node2 is asked again each round until the move is over."""
    ctx.strays_possible_on("node2")
    with ctx.moving_to("on3", "node2"):
        ctx.heartbeat_round()
        ctx.heartbeat_round()
    ctx.heartbeat_round()
    ctx.heartbeat_round()
    assert ctx.nodes.stops == [("node2", ["on2", "on3"])] * 2 + [("node2", ["on2"])]


def test_the_read_lease_holds_while_a_majority_answers_and_lapses_without(ctx):
    """When a majority of candidates answers, reads are served; when only the master itself is
    heard for longer than the lease, reads fail with an error that says why."""
    ctx.clock.advance(READ_LEASE + 5)
    ctx.heartbeat_round()                              # all answer: the lease is renewed
    ctx.may_serve_reads()
    for node in ("node2", "node3"):
        ctx.nodes.heartbeat[node] = errors.RpcError(f"node {node} unreachable")
    ctx.heartbeat_round()
    ctx.clock.advance(READ_LEASE + 5)
    ctx.heartbeat_round()                              # one of three: not renewed
    with pytest.raises(errors.QuorumError, match="node1 has not heard a majority of the master candidates for"
                                                 " 13 s: it may have been deposed"):
        ctx.may_serve_reads()
    ctx.nodes.heartbeat["node2"] = {"master": "node1", "epoch": 0, "cut_off": False}
    ctx.heartbeat_round()                              # two of three again
    ctx.may_serve_reads()


def test_a_node_marked_again_while_its_strays_are_stopped_stays_marked(ctx):
    """When a job moves an instance away from node2 (and marks it) while the master is stopping
    node2's strays with the placement of a moment before, node2 is asked again next round."""
    ctx.strays_possible_on("node2")

    def job_moves_on2_away():
        ctx.nodes.during_stop = lambda: None
        ctx.cfg.update(lambda d: d["instances"]["on2"].update(primary_node="node3"))
        ctx.strays_possible_on("node2")
    ctx.nodes.during_stop = job_moves_on2_away
    ctx.heartbeat_round()
    ctx.heartbeat_round()
    ctx.heartbeat_round()
    assert ctx.nodes.stops == [("node2", ["on2"]), ("node2", [])]


def test_a_candidate_behind_in_config_or_queue_is_caught_up_when_it_answers(ctx, monkeypatch):
    """A candidate whose copy of the config is older than the master's, or whose queue copy ends
    before what the master held at the previous round (one that stepped down emptied it), gets
    everything again, though none of its calls failed."""
    resynced = []
    real_thread = threading.Thread

    def thread(target=None, args=(), **kwargs):      # a resync runs at once, here
        if target == ctx._resync:
            return type("Now", (), {"start": lambda self: resynced.append(*args)})()
        return real_thread(target=target, args=args, **kwargs)
    monkeypatch.setattr(threading, "Thread", thread)
    round_ = ctx.heartbeat_round
    serial = ctx.cfg.snapshot().serial_no
    ctx.queue.store.write([(1, 0, '{"id": 1, "status": "success"}', 7)])
    up_to_date = {"master": "node1", "epoch": 0, "cut_off": False, "serial": serial, "queue_seq": 7}
    ctx.nodes.heartbeat.update(node2=dict(up_to_date, queue_seq=0), node3=dict(up_to_date))
    round_()                 # the mark is taken: nothing was due before it
    assert resynced == []
    round_()
    assert resynced == ["node2"]
    ctx.nodes.heartbeat.update(node2=dict(up_to_date), node3=dict(up_to_date, serial=serial - 1))
    round_()
    assert resynced == ["node2", "node3"]
