"""RAPI /2/filters and /2/filters/[uuid] as Ganeti's doc/rapi.rst and its client use them, against the
real master handlers: rules added, listed, shown, replaced and deleted, and malformed ones refused."""
from __future__ import annotations

import base64
import json

import pytest

from live_luxi import master  # noqa: F401 (a fixture)

DRAIN = [["jobid", [">", "id", "watermark"]]]


def request(tmp_path, method: str, path: str, body=None, access: str = "write") -> tuple[int, object]:
    from genet.rapi.auth import UsersFile
    from genet.rapi.server import Router
    users = tmp_path / "users"
    users.write_text(f"admin secret {access}\n")
    token = base64.b64encode(b"admin:secret").decode()
    status, _, reply = Router(UsersFile(users), require_auth=True).handle(
        method, path, {"authorization": f"Basic {token}"}, None if body is None else json.dumps(body).encode())
    return status, json.loads(reply) if status == 200 else reply


def test_a_rule_added_by_post_is_listed_shown_replaced_and_deleted(master, tmp_path):
    client_reason = [["gnt:client", "", 1409249801259897000]]       # what Ganeti's client appends
    status, uuid = request(tmp_path, "POST", "/2/filters",
                           {"priority": 0, "predicates": DRAIN, "action": "REJECT", "reason": client_reason})
    assert status == 200
    assert request(tmp_path, "GET", "/2/filters") == (200, [{"uuid": uuid, "uri": f"/2/filters/{uuid}"}])
    status, [rule] = request(tmp_path, "GET", "/2/filters?bulk=1")
    assert (rule["uuid"], rule["priority"], rule["predicates"], rule["action"]) == (uuid, 0, DRAIN, "REJECT")
    assert rule["reason_trail"][0] == client_reason[0] and rule["reason_trail"][-1][0] == "luxid"
    assert request(tmp_path, "GET", f"/2/filters/{uuid}")[1] == rule
    assert request(tmp_path, "PUT", f"/2/filters/{uuid}", {"action": ["RATE_LIMIT", 3], "priority": 2}) == (200, uuid)
    replaced = request(tmp_path, "GET", f"/2/filters/{uuid}")[1]
    assert (replaced["action"], replaced["priority"], replaced["predicates"]) == (["RATE_LIMIT", 3], 2, [])
    assert request(tmp_path, "DELETE", f"/2/filters/{uuid}") == (200, None)
    assert request(tmp_path, "GET", "/2/filters") == (200, [])


def test_put_with_a_new_uuid_creates_the_rule_under_it(master, tmp_path):
    uuid = "8b53f7de-f8e2-4470-99bd-1efe746e434f"
    assert request(tmp_path, "PUT", f"/2/filters/{uuid}", {"action": "PAUSE"}) == (200, uuid)
    assert master.cfg.snapshot().filters[uuid]["action"] == "PAUSE"


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/2/filters", {"colour": "red"}, 400, b"doesn't support the parameter 'colour'"),
    ("POST", "/2/filters", {"action": "DROP"}, 400, b"malformed filter action"),
    ("POST", "/2/filters", {"priority": -1}, 400, b"non-negative"),
    ("POST", "/2/filters", {"predicates": [["jobid", ["=", "name", 1]]]}, 400, b"unknown field 'name'"),
    ("PUT", "/2/filters/not-a-uuid", {}, 400, b"Unable to parse UUID"),
    ("GET", "/2/filters/8b53f7de-f8e2-4470-99bd-1efe746e434f", None, 404, b"not found"),
    ("DELETE", "/2/filters/8b53f7de-f8e2-4470-99bd-1efe746e434f", None, 404, b"does not exist"),
])
def test_malformed_or_unknown_rules_are_refused_and_nothing_is_stored(master, tmp_path, method, path, body, status,
                                                                         message):
    code, reply = request(tmp_path, method, path, body)
    assert code == status and message in reply
    assert master.cfg.snapshot().filters == {}


def test_changing_rules_needs_write_access(master, tmp_path):
    assert request(tmp_path, "POST", "/2/filters", {}, access="read")[0] == 403
    assert request(tmp_path, "GET", "/2/filters", access="read")[0] == 200


def test_query_resources_filter_and_lock(master, tmp_path):
    request(tmp_path, "POST", "/2/filters", {"action": "ACCEPT"})
    status, result = request(tmp_path, "GET", "/2/query/filter?fields=uuid,action")
    assert status == 200 and [[v for _, v in row][1] for row in result["data"]] == ["ACCEPT"]
    status, result = request(tmp_path, "GET", "/2/query/lock?fields=name,mode")
    assert status == 200 and [[0, "cluster/BGL"], [0, None]] in result["data"]
