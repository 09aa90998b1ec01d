"""noded refuses the writes of a deposed master (one of an older master epoch)."""
from __future__ import annotations

import inspect
import json

import pytest

from genet import config, errors, paths, rpc_defs
from genet.noded import NodeProcedures
from genet.rpc_defs import Heartbeat


def cluster_config(epoch: int, serial: int, master: str = "node1") -> str:
    data = config.new_cluster("c1", master, "127.0.0.11")
    data["cluster"]["master_epoch"], data["serial_no"] = epoch, serial
    return config.dumps(data).decode()


def node_procedures() -> NodeProcedures:
    """noded's procedures on a node whose config (epoch 1, serial 5) names node2 as the master."""
    paths.ensure_dirs()
    procs = NodeProcedures()
    procs.rpc_upload_config(cluster_config(epoch=1, serial=5, master="node2"))
    procs.rpc_write_ssconf({"master_node": "node2"})
    return procs


@pytest.fixture
def node(node_env):
    return node_procedures()


def record(job_id: int, seq: int) -> list:
    return [job_id, 0, json.dumps({"id": job_id, "status": "success", "ops": [], "oplog": []}), seq]


def test_a_config_from_an_older_epoch_is_refused_naming_the_master(node):
    """When a deposed master (epoch 0) pushes a config, even with a higher serial, it is refused
    with an error that names the current master; the stored config does not change."""
    before = paths.config_file().read_bytes()
    with pytest.raises(errors.EpochError, match="the master is now node2 \\(epoch 1\\)") as err:
        node.rpc_upload_config(cluster_config(epoch=0, serial=9))
    assert err.value.args[1] == "node2" and paths.config_file().read_bytes() == before


def test_a_newer_epoch_wins_over_a_higher_serial(node):
    """When a new master (epoch 2) pushes its config, it is stored even if the serial is lower
    (the higher one held a deposed master's uncommitted changes)."""
    assert node.rpc_upload_config(cluster_config(epoch=2, serial=3)) == 3
    assert node.rpc_heartbeat(2, "node2") == Heartbeat("node2", 2, False, serial=3)
    assert node.rpc_upload_config(cluster_config(epoch=2, serial=2)) == 3      # same epoch: the serial rules


def test_job_queue_updates_of_an_older_epoch_are_refused(node):
    """When a deposed master replicates job updates, nothing is stored; the current epoch's are."""
    with pytest.raises(errors.EpochError):
        node.rpc_jobqueue_update([record(6, 100)], 0)
    assert node.rpc_jobqueue_versions() == []
    assert node.rpc_jobqueue_update([record(6, 7)], 1) == 1
    assert node.rpc_jobqueue_versions() == [(6, 7)]


def test_a_fence_refuses_the_old_master_before_the_new_config_arrives(node):
    """When master-failover fences a node with a new epoch, the writes of the old epoch are refused
    at once, naming the node that takes over, though the config still names the old master."""
    assert node.rpc_fence(2, "node3") == 2
    assert node.rpc_heartbeat(2, "node3") == Heartbeat("node3", 2, False, serial=5)
    with pytest.raises(errors.EpochError, match="the master is now node3 \\(epoch 2\\)"):
        node.rpc_jobqueue_update([record(6, 9)], 1)
    with pytest.raises(errors.EpochError):
        node.rpc_upload_config(cluster_config(epoch=1, serial=6, master="node2"))
    assert node.rpc_fence(1, "node2") == 2                 # an older fence changes nothing
    assert node.rpc_upload_config(cluster_config(epoch=2, serial=1, master="node3")) == 1


def test_wrong_arguments_are_the_callers_error_and_a_type_error_inside_is_not(node):
    """When a caller passes too few or too many arguments, or one of the wrong type, the error
    names the procedure (and the argument) and is wrong input; a TypeError raised inside a
    procedure (a bug) is not dressed up as wrong input."""
    for procedure, args, message in (
            ("jobqueue_records", [], "takes 1 argument, 0 given"),
            ("jobqueue_records", [[1], 2], "takes 1 argument, 2 given"),
            ("jobqueue_records", [5], "argument 'ids' must be a list, not int"),
            ("jobqueue_records", [["7"]], "argument 'ids'[0] must be an integer, not a string"),
            ("heartbeat", [1, "node1", True], "takes 2 arguments, 3 given"),
            ("instance_stop", ["i1", "kvm"], "takes 3 to 4 arguments, 2 given")):
        with pytest.raises(errors.OpPrereqError) as err:
            node.call(procedure, args)
        assert err.value.args == (f"{procedure}: {message}", errors.ECode.INVAL.value)
    with pytest.raises(TypeError):
        node.call("jobqueue_update", [[5], 1])      # unpacking an int, inside the procedure
    with pytest.raises(errors.OpPrereqError, match="unknown RPC procedure 'nosuch'"):
        node.call("nosuch", [])


def test_every_procedure_is_defined_once_and_implemented_with_its_signature():
    """noded implements exactly the procedures of the table, each with the parameters (names,
    order, defaults) the table declares."""
    implemented = {name[4:]: getattr(NodeProcedures, name) for name in dir(NodeProcedures) if name.startswith("rpc_")}
    assert set(implemented) == set(rpc_defs.PROCEDURES)
    for name, proc in rpc_defs.PROCEDURES.items():
        params = list(inspect.signature(implemented[name]).parameters.values())[1:]
        assert [(p.name, p.default) for p in params] == [(p.name, p.default) for p in proc.params], name


def test_results_go_out_as_plain_json(node):
    """When a procedure returns a typed result, call() gives the wire form the client decodes."""
    assert node.call("heartbeat", [1, "node2"]) == {"master": "node2", "epoch": 1, "cut_off": False, "synced": [], "serial": 5, "queue_seq": 0}
    assert node.call("version", [])["protocol"] == 1
