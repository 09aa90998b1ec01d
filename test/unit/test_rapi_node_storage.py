"""The RAPI's storage resources of a node, as Ganeti's client calls them: the job each submits and
what is refused before anything is submitted."""
from __future__ import annotations

import base64

import pytest

from luxi_recorder import recorder  # noqa: F401 (a fixture)


def request(tmp_path, method: str, path: str, access: str = "write") -> tuple[int, bytes]:
    from genet.rapi.auth import UsersFile
    from genet.rapi.server import Router
    users = tmp_path / "users"
    users.write_text(f"admin secret {access}\n")
    token = base64.b64encode(b"admin:secret").decode()
    status, _, reply = Router(UsersFile(users), require_auth=True).handle(
        method, path, {"authorization": f"Basic {token}"}, None)
    return status, reply


def test_get_storage_submits_the_query_of_that_node_and_answers_the_job_id(recorder, tmp_path):
    status, reply = request(tmp_path, "GET", "/2/nodes/node2/storage?storage_type=lvm-vg&output_fields=name,size,free")
    assert (status, reply) == (200, b"1")
    (op,) = recorder.jobs[0]
    assert (op["OP_ID"], op["nodes"], op["storage_type"], op["output_fields"]) == \
        ("OP_NODE_QUERY_STORAGE", ["node2"], "lvm-vg", ["name", "size", "free"])


def test_get_storage_with_an_empty_type_asks_for_the_default_one(recorder, tmp_path):
    """Ganeti's client sends storage_type= for None."""
    assert request(tmp_path, "GET", "/2/nodes/node2/storage?storage_type=&output_fields=name")[0] == 200
    assert recorder.jobs[0][0]["storage_type"] is None


@pytest.mark.parametrize("path, access, status, message", [
    ("/2/nodes/node2/storage?storage_type=lvm-vg", "write", 400, b"Missing the required 'output_fields' parameter"),
    ("/2/nodes/node2/storage?storage_type=lvm-vg&output_fields=name", "read", 403, b""),
    ("/2/nodes/node2/storage?storage_type=lvm-vg&output_fields=name&colour=red", "write", 400, b"colour"),
])
def test_get_storage_refuses_before_submitting(recorder, tmp_path, path, access, status, message):
    code, reply = request(tmp_path, "GET", path, access)
    assert code == status and message in reply
    assert recorder.jobs == []


def test_modify_storage_without_allocatable_changes_nothing(recorder, tmp_path):
    assert request(tmp_path, "PUT", "/2/nodes/node2/storage/modify?storage_type=lvm-pv&name=%2Fdev%2Fsdb1")[0] == 200
    assert recorder.jobs[0][0]["changes"] == {}


def test_repair_storage_needs_the_units_name(recorder, tmp_path):
    code, reply = request(tmp_path, "PUT", "/2/nodes/node2/storage/repair?storage_type=lvm-vg")
    assert code == 400 and b"name" in reply
    assert recorder.jobs == []
