"""genet's RAPI against Ganeti 3.1's, as its source has it (test/unit/data/ganeti_rapi.json, written by
tools/ganeti-rapi-surface from lib/rapi/connector.py, rlib2.py and client.py): every URL and method
Ganeti serves is served, and every query argument and body field Ganeti's client sends is taken.
Paths that are not Ganeti's answer 404, as Ganeti answers them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from genet.rapi import server
from luxi_recorder import recorder  # noqa: F401 (a fixture)

DATA = json.loads((Path(__file__).parent / "data" / "ganeti_rapi.json").read_text())
UUID = "6ad1a3b4-0000-4000-8000-000000000001"
# a value for each placeholder of the connector's and the client's paths that must be of a kind
SAMPLES = {"job_id": "1", "disk": "0", "query_res": "instance", "what": "instance", "filter_uuid": UUID,
           "uuid": UUID}
ROUTER = server.Router(None, require_auth=False)
PAIRS = sorted((path, method) for path, methods in DATA["resources"].items() for method in methods)
REQUESTS = sorted({(name, request["method"], request["path"]) for name, info in DATA["client"].items()
                   for request in info["requests"]})
# the requests whose body is an object (not none, a role string, the node tags list Ganeti ignores)
OBJECT_BODIES = sorted({(name, request["method"], request["path"]) for name, info in DATA["client"].items()
                        for request in info["requests"] if request["body"] not in ("None", "tags", "role")})


def concrete(path: str) -> str:
    return re.sub(r"\[([a-z_]+)\]", lambda m: SAMPLES.get(m.group(1), "x1"), path)


def resource_for(method: str, path: str):
    resource, _ = ROUTER.route(concrete(path))
    assert resource is not None and method in resource.methods(), f"{method} {path} is not served"
    return type(resource)


def handle(method: str, path: str) -> tuple[int, object]:
    class Anyone:
        def authenticate(self, header):
            return type("User", (), {"name": "admin", "can_write": True})()
    status, _, reply = server.Router(Anyone(), require_auth=False).handle(method, path, {}, None)
    return status, json.loads(reply)


def answer(method: str, path: str) -> int:
    return handle(method, path)[0]


def test_the_data_is_ganetis_whole_surface():
    """When the data is read, it holds Ganeti 3.1's 61 URLs with 83 methods, and 82 client methods
    (a truncated or empty file would make every test below pass vacuously)."""
    assert (len(DATA["resources"]), len(PAIRS), len(DATA["client"])) == (61, 83, 82)


@pytest.mark.parametrize("path,method", PAIRS, ids=[f"{m} {p}" for p, m in PAIRS])
def test_every_url_and_method_of_ganeti_is_served(path, method):
    """When Ganeti serves METHOD PATH, genet has a resource for it with that method."""
    resource_for(method, path)


@pytest.mark.parametrize("path", ["/2/instances/web1/snapshot", "/2/instances/web1/open-port", "/2/nodes/n1/nope"])
def test_a_path_ganeti_does_not_have_answers_404(path):
    """When a path is not Ganeti's (snapshot and open-port never were), the answer is Ganeti's
    404 for an unknown resource."""
    assert answer("PUT", path) == 404


@pytest.mark.parametrize("name,method,path", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_every_query_argument_of_ganetis_client_is_taken(name, method, path):
    """When Ganeti's client sends a query argument (dry-run, force, reason, tag, bulk...), the
    resource takes it: genet refuses arguments it does not know, so none may be missing."""
    resource = resource_for(method, path)
    missing = set(DATA["client"][name]["query"]) - set(resource.query_args(method))
    assert not missing, f"{name}: {method} {path} does not take ?{', ?'.join(sorted(missing))}"


def body_fields(name: str) -> set[str]:
    """The fields a client method puts in its body, those of the methods that build it included."""
    info = DATA["client"][name]
    return set(info["body"]).union(*(body_fields(used) for used in info["uses"]))


@pytest.mark.parametrize("name,method,path", OBJECT_BODIES, ids=[r[0] for r in OBJECT_BODIES])
def test_every_body_field_of_ganetis_client_is_taken(name, method, path):
    """When Ganeti's client sends a body object, each of its fields is a parameter of the
    resource's opcode (by its name or Ganeti's) or a field the resource reads itself; where the
    client passes its keyword arguments on as the body, the resource builds an opcode from it."""
    resource = resource_for(method, path)
    info = DATA["client"][name]
    opclass = resource.opcode(method)
    taken = {p.name for p in resource.BODY.get(method, ())}
    if opclass is not None:
        taken |= {p.name for p in opclass.all_params()} | {p.rapi for p in opclass.all_params() if p.rapi}
    missing = body_fields(name) - taken
    assert not missing, f"{name}: {method} {path} does not take {', '.join(sorted(missing))}"
    if info["kwargs_body"]:
        assert opclass is not None, f"{name} sends its keyword arguments, {method} {path} builds no opcode"


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_prepare_export_submits_the_prepare_opcode_with_the_mode_of_the_query(recorder, mode):
    """When Ganeti's client prepares an export (PUT ...?mode=M), one OpBackupPrepare job of that
    mode and instance is submitted and its id answered."""
    assert handle("PUT", f"/2/instances/web1/prepare-export?mode={mode}&reason=move") == (200, 1)
    (op,) = recorder.jobs[0]
    assert (op["OP_ID"], op["instance_name"], op["mode"]) == ("OP_BACKUP_PREPARE", "web1", mode)
    assert op["reason"][0][:2] == ["rapi:user", "move"]


@pytest.mark.parametrize("query", ["", "?mode=over-the-air"])
def test_prepare_export_without_a_known_mode_is_refused_and_submits_nothing(recorder, query):
    """When the mode is missing or not local/remote, the answer is a 400 naming it, and no job."""
    status, reply = handle("PUT", f"/2/instances/web1/prepare-export{query}")
    assert status == 400 and "mode" in reply["explain"] and recorder.jobs == []


def test_the_features_are_ganetis():
    """When /2/features is asked, the answer is Ganeti 3.1's feature strings, no more, no fewer."""
    assert sorted(handle("GET", "/2/features")[1]) == DATA["features"]
