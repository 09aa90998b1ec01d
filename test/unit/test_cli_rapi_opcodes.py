"""The CLI and the RAPI build the same opcode for the same request, for every opcode both offer.

Both end in luxi's SubmitJob; here luxi records what it would send instead of sending it, the
gnt-* command runs as a user types it and the RAPI request goes through the RAPI's own router
(authentication included). Only the reason trail (who asked, how) may differ.
"""
from __future__ import annotations

import base64
import importlib
import json
import pathlib

import pytest

from genet import opcodes
from genet.cli import base as cli_base
from luxi_recorder import recorder  # noqa: F401 (a fixture)

USER, PASSWORD = "admin", "secret"
DATA = pathlib.Path(__file__).parent / "data"

# (opcode, gnt-* argv, RAPI method, path, body): the same request, as a user of each would make it
CASES = [
    ("OP_INSTANCE_CREATE",
     ["gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=1G", "-o", "noop", "-B", "memory=512",
      "--no-start", "web1"],
     "POST", "/2/instances", {"__version__": 1, "name": "web1", "disk_template": "file", "pnode": "node2",
                              "disks": [{"size": 1024}], "os": "noop", "beparams": {"memory": 512}, "start": False,
                              "nics": [{}]}),      # the CLI's default: one NIC of the cluster's parameters
    ("OP_INSTANCE_REMOVE", ["gnt-instance", "remove", "-f", "--shutdown-timeout", "30", "web1"],
     "DELETE", "/2/instances/web1", {"shutdown_timeout": 30}),
    ("OP_INSTANCE_STARTUP", ["gnt-instance", "startup", "web1"], "PUT", "/2/instances/web1/startup", None),
    ("OP_INSTANCE_SHUTDOWN", ["gnt-instance", "shutdown", "--timeout", "30", "web1"],
     "PUT", "/2/instances/web1/shutdown", {"timeout": 30}),
    ("OP_INSTANCE_REBOOT", ["gnt-instance", "reboot", "--type", "hard", "web1"],
     "POST", "/2/instances/web1/reboot?type=hard", None),
    ("OP_INSTANCE_RENAME", ["gnt-instance", "rename", "web1", "web2"],
     "PUT", "/2/instances/web1/rename", {"new_name": "web2"}),
    ("OP_INSTANCE_REINSTALL", ["gnt-instance", "reinstall", "-f", "-o", "noop", "web1"],
     "POST", "/2/instances/web1/reinstall", {"os": "noop", "start": False}),
    ("OP_INSTANCE_GROW_DISK", ["gnt-instance", "grow-disk", "web1", "0", "1G"],
     "POST", "/2/instances/web1/disk/0/grow", {"amount": 1024}),
    ("OP_INSTANCE_ACTIVATE_DISKS", ["gnt-instance", "activate-disks", "web1"],
     "PUT", "/2/instances/web1/activate-disks", None),
    ("OP_INSTANCE_DEACTIVATE_DISKS", ["gnt-instance", "deactivate-disks", "web1"],
     "PUT", "/2/instances/web1/deactivate-disks", None),
    ("OP_INSTANCE_RECREATE_DISKS", ["gnt-instance", "recreate-disks", "web1"],
     "POST", "/2/instances/web1/recreate-disks", None),
    ("OP_INSTANCE_MIGRATE", ["gnt-instance", "migrate", "-f", "-n", "node3", "web1"],
     "PUT", "/2/instances/web1/migrate", {"target_node": "node3"}),
    ("OP_INSTANCE_FAILOVER", ["gnt-instance", "failover", "-f", "--ignore-consistency", "web1"],
     "PUT", "/2/instances/web1/failover", {"ignore_consistency": True}),
    ("OP_INSTANCE_MOVE", ["gnt-instance", "move", "-f", "-n", "node3", "web1"],
     "PUT", "/2/instances/web1/move", {"target_node": "node3"}),
    ("OP_INSTANCE_SET_PARAMS", ["gnt-instance", "modify", "-B", "memory=1G", "web1"],
     "PUT", "/2/instances/web1/modify", {"beparams": {"memory": 1024}}),
    ("OP_INSTANCE_REPLACE_DISKS", ["gnt-instance", "replace-disks", "-s", "web1"],
     "POST", "/2/instances/web1/replace-disks?mode=replace_on_secondary", None),
    ("OP_BACKUP_EXPORT", ["gnt-backup", "export", "-n", "node3", "web1"],
     "PUT", "/2/instances/web1/export", {"mode": "local", "destination": "node3"}),
    ("OP_NODE_SET_PARAMS", ["gnt-node", "modify", "--drained", "yes", "node2"],
     "POST", "/2/nodes/node2/modify", {"drained": True}),
    ("OP_NODE_EVACUATE", ["gnt-node", "evacuate", "-f", "-p", "node2"],
     "POST", "/2/nodes/node2/evacuate", {"mode": "primary-only"}),
    ("OP_NODE_MIGRATE", ["gnt-node", "migrate", "-f", "node2"], "POST", "/2/nodes/node2/migrate", None),
    ("OP_NODE_POWERCYCLE", ["gnt-node", "powercycle", "--yes", "-f", "node2"],
     "POST", "/2/nodes/node2/powercycle?force=1", None),
    ("OP_NODE_MODIFY_STORAGE", ["gnt-node", "modify-storage", "--allocatable", "no", "node2", "lvm-pv", "/dev/sdb1"],
     "PUT", "/2/nodes/node2/storage/modify?storage_type=lvm-pv&name=%2Fdev%2Fsdb1&allocatable=0", None),
    ("OP_REPAIR_NODE_STORAGE", ["gnt-node", "repair-storage", "node2", "lvm-vg", "xenvg"],
     "PUT", "/2/nodes/node2/storage/repair?storage_type=lvm-vg&name=xenvg", None),
    ("OP_GROUP_ADD", ["gnt-group", "add", "rack2"], "POST", "/2/groups", {"name": "rack2"}),
    ("OP_GROUP_REMOVE", ["gnt-group", "remove", "rack2"], "DELETE", "/2/groups/rack2", None),
    ("OP_GROUP_RENAME", ["gnt-group", "rename", "rack2", "rack3"],
     "PUT", "/2/groups/rack2/rename", {"new_name": "rack3"}),
    ("OP_GROUP_SET_PARAMS", ["gnt-group", "modify", "--alloc-policy", "last_resort", "rack2"],
     "PUT", "/2/groups/rack2/modify", {"alloc_policy": "last_resort"}),
    ("OP_GROUP_ASSIGN_NODES", ["gnt-group", "assign-nodes", "rack2", "node2", "node3"],
     "PUT", "/2/groups/rack2/assign-nodes", {"nodes": ["node2", "node3"]}),
    # Ganeti's RAPI spells an instance's name and OS as name and os (batch-create's file as the opcode)
    ("OP_INSTANCE_MULTI_ALLOC", ["gnt-instance", "batch-create", str(DATA / "batch-create.json")],
     "POST", "/2/instances-multi-alloc",
     {"instances": [{"name": "web1", "disk_template": "file", "os": "noop", "disks": [{"size": 1024}], "nics": [{}]},
                    {"name": "db1", "disk_template": "diskless", "os": "noop", "beparams": {"maxmem": 512}}]}),
    ("OP_GROUP_EVACUATE", ["gnt-group", "evacuate", "--to", "rack3", "rack2"],
     "PUT", "/2/groups/rack2/evacuate", {"target_groups": ["rack3"]}),
    ("OP_INSTANCE_CHANGE_GROUP", ["gnt-instance", "change-group", "--to", "rack3", "web1"],
     "PUT", "/2/instances/web1/change-group", {"target_groups": ["rack3"]}),
    ("OP_NETWORK_ADD", ["gnt-network", "add", "--network", "10.1.0.0/24", "net1"],
     "POST", "/2/networks", {"name": "net1", "network": "10.1.0.0/24"}),
    ("OP_NETWORK_SET_PARAMS", ["gnt-network", "modify", "--gateway", "10.1.0.1", "net1"],
     "PUT", "/2/networks/net1/modify", {"gateway": "10.1.0.1"}),
    ("OP_NETWORK_REMOVE", ["gnt-network", "remove", "net1"], "DELETE", "/2/networks/net1", None),
    ("OP_NETWORK_CONNECT", ["gnt-network", "connect", "--nic-parameters", "mode=bridged,link=br0", "net1", "rack2"],
     "PUT", "/2/networks/net1/connect", {"group_name": "rack2", "network_mode": "bridged", "network_link": "br0"}),
    ("OP_NETWORK_DISCONNECT", ["gnt-network", "disconnect", "net1", "rack2"],
     "PUT", "/2/networks/net1/disconnect", {"group_name": "rack2"}),
    ("OP_NETWORK_RENAME", ["gnt-network", "rename", "net1", "net2"],
     "PUT", "/2/networks/net1/rename", {"new_name": "net2"}),
    ("OP_TAGS_SET", ["gnt-instance", "add-tags", "web1", "a", "b"], "PUT", "/2/instances/web1/tags?tag=a&tag=b",
     None),
    ("OP_TAGS_DEL", ["gnt-node", "remove-tags", "node2", "a"], "DELETE", "/2/nodes/node2/tags?tag=a", None),
    ("OP_CLUSTER_SET_PARAMS", ["gnt-cluster", "modify", "--candidate-pool-size", "5"],
     "PUT", "/2/modify", {"candidate_pool_size": 5}),
    ("OP_CLUSTER_REDIST_CONF", ["gnt-cluster", "redist-conf"], "PUT", "/2/redistribute-config", None),
]
# opcodes only the RAPI submits, as in Ganeti: no gnt-* command builds them
RAPI_ONLY = {"OP_BACKUP_PREPARE"}       # Ganeti's tools/move-instance asks the source cluster's RAPI


def the_opcode(job: list[dict], op_id: str) -> dict:
    """The job's opcode of that kind (Ganeti's RAPI reinstall also stops and starts the instance)."""
    (op,) = [op for op in job if op["OP_ID"] == op_id]
    return op


def cli_job(recorder, argv: list[str]) -> list[dict]:
    module = importlib.import_module(f"genet.cli.{argv[0].replace('-', '_')}")
    code = cli_base.run(argv[0], module.build, argv[1:])
    assert code == 0, f"{' '.join(argv)} exited {code}"
    return recorder.jobs.pop()


def rapi_job(recorder, tmp_path, method: str, path: str, body) -> list[dict]:
    from genet.rapi.auth import UsersFile
    from genet.rapi.server import Router
    users = tmp_path / "users"
    users.write_text(f"{USER} {PASSWORD} write\n")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    status, _, reply = Router(UsersFile(users), require_auth=True).handle(
        method, path, {"authorization": f"Basic {token}"}, None if body is None else json.dumps(body).encode())
    assert status == 200, f"{method} {path}: {status} {reply!r}"
    return recorder.jobs.pop()


def comparable(op: dict) -> dict:
    """The opcode with its defaults filled in, without the trail of who asked how."""
    full = opcodes.from_dict(op).to_dict()
    full.pop("reason", None)
    return full


@pytest.mark.parametrize("op_id, argv, method, path, body", CASES, ids=[c[0] for c in CASES])
def test_the_cli_and_the_rapi_build_the_same_opcode(recorder, tmp_path, op_id, argv, method, path, body):
    from_cli = comparable(the_opcode(cli_job(recorder, argv), op_id))
    from_rapi = comparable(the_opcode(rapi_job(recorder, tmp_path, method, path, body), op_id))
    assert from_cli == from_rapi


def test_every_opcode_the_rapi_submits_is_compared_here():
    from genet.rapi import rlib2
    submitted = {getattr(opcodes, name).OP_ID for name in
                 {rlib2.opcode_for(r, m) for r in rlib2.resources() for m in r().methods()} - {None}}
    covered = {case[0] for case in CASES}
    assert sorted(submitted - covered - RAPI_ONLY) == []
