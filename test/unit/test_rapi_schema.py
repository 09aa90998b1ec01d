"""The RAPI reads bodies and query arguments through the opcode schema (issue 13).

Ganeti's body names (``name``, ``os``, ``destination``) are declared on the parameter
(``Param.rapi``), and so are the query arguments that carry one (``Param.query``); the
OpenAPI document is drawn from the same declarations, and a query argument no declaration
names is a 400 naming it, with nothing submitted. Requests go through the RAPI's own router,
luxi records what would be sent.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from genet import luxi, opcodes
from genet.rapi import baserlib, openapi, rlib2

RLIB2 = Path(rlib2.__file__)


class Luxi:
    """Stands in for the master daemon: records calls, answers that jobs were submitted."""

    def __init__(self):
        self.jobs: list[list[dict]] = []
        self.calls: list[tuple] = []

    def call(self, method, *args):
        self.calls.append((method, *args))
        if method == "SubmitJob":
            self.jobs.append(args[0])
            return len(self.jobs)
        if method == "QueryJobs":
            return [["queued"]]
        if method == "Query":
            return {"fields": [], "data": []}
        raise AssertionError(f"unexpected luxi call {method}")


@pytest.fixture
def master(monkeypatch):
    recorded = Luxi()
    monkeypatch.setattr(luxi.Client, "call", lambda self, method, *args: recorded.call(method, *args))
    return recorded


def rapi(method: str, path: str, body=None) -> tuple[int, object]:
    from genet.rapi.server import Router

    class Anyone:
        def authenticate(self, header):
            return type("User", (), {"name": "admin", "can_write": True})()
    status, _, reply = Router(Anyone(), require_auth=False).handle(
        method, path, {}, None if body is None else json.dumps(body).encode())
    return status, json.loads(reply)


def submitted(master, method: str, path: str, body=None) -> dict:
    """The last opcode of the job the request submitted."""
    status, reply = rapi(method, path, body)
    assert status == 200, reply
    return master.jobs.pop()[-1]


def refused(master, method: str, path: str, body=None) -> str:
    """The explanation of a 400; nothing was submitted."""
    status, reply = rapi(method, path, body)
    assert status == 400, reply
    assert master.jobs == []
    return reply["explain"]


# --- the declarations ------------------------------------------------------------

@pytest.mark.parametrize("opclass", list(opcodes.registry().values()), ids=lambda c: c.__name__)
def test_each_body_and_query_name_of_an_opcode_means_one_parameter(opclass):
    names = [p.name for p in opclass.all_params()]
    aliases = [p.rapi for p in opclass.all_params() if p.rapi]
    queries = [p.query for p in opclass.all_params() if p.query]
    assert len(set(names + aliases)) == len(names) + len(aliases)
    assert len(set(queries)) == len(queries) and "reason" not in queries


@pytest.mark.parametrize("resource", rlib2.resources(), ids=lambda r: r.__name__)
def test_a_resource_reads_no_query_argument_twice(resource):
    for method in resource().methods():
        own = [p.name for p in resource.QUERY.get(method, ())]
        opclass = resource.opcode(method)
        schema = list(baserlib.query_params(opclass, method)) if opclass else []
        assert len(set(own + schema + ["reason"])) == len(own) + len(schema) + 1, method


def test_rlib2_reads_only_declared_query_arguments():
    """No hand-read query argument hides from the check: each one rlib2 reads by name is declared."""
    declared = {p.name for r in rlib2.resources() for ps in r.QUERY.values() for p in ps}
    read = set(re.findall(r"query_(?:flag|value)\(req, \"([^\"]+)\"", RLIB2.read_text()))
    assert read and read <= declared
    assert "rename=" not in RLIB2.read_text() and "RENAME" not in RLIB2.read_text()


# --- bodies: Ganeti's names ----------------------------------------------------------

CREATE = {"__version__": 1, "disk_template": "diskless", "disks": [], "nics": []}


@pytest.mark.parametrize("method, path, body, param, value", [
    ("POST", "/2/instances", dict(CREATE, name="web1", os="noop"), "instance_name", "web1"),
    ("POST", "/2/instances", dict(CREATE, name="web1", os="noop"), "os_type", "noop"),
    ("POST", "/2/instances", dict(CREATE, instance_name="web1", os_type="noop"), "os_type", "noop"),
    ("POST", "/2/groups", {"name": "rack2"}, "group_name", "rack2"),
    ("POST", "/2/networks", {"name": "net1", "network": "10.1.0.0/24"}, "network_name", "net1"),
    ("POST", "/2/networks", {"network_name": "net1", "network": "10.1.0.0/24"}, "network_name", "net1"),
    ("PUT", "/2/instances/web1/export", {"mode": "local", "destination": "node3"}, "target_node", "node3"),
    ("POST", "/2/instances/web1/reinstall", {"os": "image", "start": False}, "os_type", "image"),
])
def test_ganetis_body_name_fills_the_opcode_parameter(master, method, path, body, param, value):
    op = submitted(master, method, path, body)
    assert op[param] == value
    alias = next((p.rapi for p in opcodes.registry()[op["OP_ID"]].all_params() if p.name == param), None)
    assert alias not in op or alias == param


def test_both_names_of_one_parameter_are_refused(master):
    assert "give either 'name' or 'instance_name'" in refused(
        master, "POST", "/2/instances", dict(CREATE, name="a", instance_name="b"))


def test_a_body_field_only_creation_reads_is_refused_elsewhere(master):
    """``__version__`` belongs to instance creation; the reinstall opcode has no such parameter."""
    assert "__version__" in refused(master, "POST", "/2/instances/web1/reinstall", {"__version__": 1})


def test_node_migrate_refuses_live_and_mode_that_disagree(master):
    assert submitted(master, "POST", "/2/nodes/node2/migrate", {"live": False})["mode"] == "non-live"
    assert "either 'live' or 'mode'" in refused(master, "POST", "/2/nodes/node2/migrate",
                                                  {"live": False, "mode": "live"})


# --- query arguments: used or refused ------------------------------------------------

@pytest.mark.parametrize("method, path, param, value", [
    ("PUT", "/2/instances/web1/startup?no_remember=1", "no_remember", True),
    ("PUT", "/2/instances/web1/shutdown?no_remember=True", "no_remember", True),
    ("PUT", "/2/instances/web1/startup?dry-run=1", "dry_run", True),
    ("POST", "/2/instances/web1/reboot?type=full", "reboot_type", "full"),
    ("POST", "/2/instances/web1/reboot?ignore_secondaries=False", "ignore_secondaries", False),
    ("PUT", "/2/instances/web1/activate-disks?ignore_size=1", "ignore_size", True),
    ("PUT", "/2/instances/web1/deactivate-disks?force=1", "force", True),
    ("POST", "/2/instances/web1/replace-disks?mode=replace_on_secondary&disks=0,1", "disks", [0, 1]),
    ("POST", "/2/instances/web1/replace-disks?remote_node=node3&early_release=True", "early_release", True),
    ("DELETE", "/2/instances/web1?shutdown_timeout=5", "shutdown_timeout", 5),
    ("GET", "/2/instances/web1/info?static=1", "static", True),
    ("PUT", "/2/nodes/node2/role?force=1&auto-promote=1", "auto_promote", True),
    ("PUT", "/2/groups/rack2/assign-nodes?force=1", "force", True),
    ("DELETE", "/2/networks/net1?force=1", "force", True),
    ("POST", "/2/nodes/node2/migrate?mode=non-live", "mode", "non-live"),
    ("POST", "/2/instances/web1/reinstall?os=image", "os_type", "image"),
])
def test_a_query_argument_fills_its_parameter(master, method, path, param, value):
    body = {"nodes": ["node2"]} if "assign-nodes" in path else ("regular" if "/role" in path else None)
    status, reply = rapi(method, path, body)
    assert status == 200, reply
    job = master.jobs.pop()
    op = job[1] if len(job) == 3 else job[0]        # a reinstall is shutdown, reinstall, startup
    assert op[param] == value


@pytest.mark.parametrize("method, path, body, named", [
    ("PUT", "/2/instances/web1/shutdown?force=1", None, "'force'"),
    ("PUT", "/2/instances/web1/startup?bogus=1", None, "'bogus'"),
    ("GET", "/2/os?dry-run=1", None, "'dry-run'"),                         # a GET changes nothing
    ("GET", "/2/instances?lock=1", None, "'lock'"),
    ("GET", "/2/instances?bulk=1&static=1", None, "'static'"),
    ("POST", "/2/instances/web1/reinstall?nostartup=1&no_remember=1", None, "'no_remember'"),
    ("PUT", "/2/tags?tag=a&force=1", None, "'force'"),
    ("PUT", "/2/modify?candidate_pool_size=3", None, "'candidate_pool_size'"),   # body only
    ("POST", "/2/nodes/node2/migrate?live=0", None, "'live'"),
])
def test_a_query_argument_nothing_declares_is_refused_by_name(master, method, path, body, named):
    explain = refused(master, method, path, body)
    assert f"query argument(s) {named} not supported" in explain


@pytest.mark.parametrize("path, explain", [
    ("/2/instances/web1/reboot?ignore_secondaries=maybe", "'ignore_secondaries' must be 0 or 1"),
    ("/2/instances/web1/reboot?type=sideways", "query argument 'type': must be one of soft, hard, full"),
    ("/2/instances/web1/replace-disks?disks=x", "query argument 'disks'"),
    ("/2/instances/web1/reboot?dry-run=maybe", "'dry-run' must be 0 or 1"),
])
def test_a_value_the_parameter_refuses_is_a_400_naming_the_argument(master, path, explain):
    assert explain in refused(master, "POST", path)


def test_body_and_query_that_disagree_are_refused(master):
    assert "given in the body and as ?no_remember=" in refused(
        master, "PUT", "/2/instances/web1/shutdown?no_remember=1", {"no_remember": False})
    assert "'start' and ?nostartup= disagree" in refused(
        master, "POST", "/2/instances/web1/reinstall?nostartup=1", {"start": True})


def test_reason_is_taken_everywhere_and_recorded_in_the_trail(master):
    assert rapi("GET", "/2/instances?reason=look")[0] == 200
    op = submitted(master, "PUT", "/2/instances/web1/startup?reason=maintenance")
    assert ["rapi:user", "maintenance"] == op["reason"][0][:2]


def test_a_dry_run_cancel_asks_and_cancels_nothing(master):
    status, reply = rapi("DELETE", "/2/jobs/5?dry-run=1")
    assert status == 200 and reply[0] is True and "dry run" in reply[1]
    assert [c[0] for c in master.calls] == ["QueryJobs"]


# --- the OpenAPI document --------------------------------------------------------------

def test_openapi_body_shows_ganetis_names():
    doc = openapi.document()["paths"]
    create = doc["/2/instances"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"name", "os", "__version__", "instance_name", "os_type"} <= set(create["properties"])
    assert "Ganeti's name for instance_name" in create["properties"]["name"]["description"]
    assert {"anyOf": [{"required": ["name"]}, {"required": ["instance_name"]}]} in create["allOf"]
    assert "__version__" in create["required"] and "instance_name" not in create["required"]
    export = doc["/2/instances/{instance_name}/export"]["put"]["requestBody"]["content"]["application/json"]
    assert "destination" in export["schema"]["properties"]
    evacuate = doc["/2/nodes/{node_name}/evacuate"]["post"]["requestBody"]["content"]["application/json"]
    assert evacuate["schema"]["properties"]["mode"]["enum"] == ["primary-only", "secondary-only", "all"]


@pytest.mark.parametrize("resource", rlib2.resources(), ids=lambda r: r.__name__)
def test_openapi_query_arguments_are_exactly_those_the_router_takes(resource):
    path, names = openapi.openapi_path(resource.PATTERN)
    item = openapi.document()["paths"][path]
    for method in resource().methods():
        shown = {p["name"] for p in item[method.lower()].get("parameters", []) if p["in"] == "query"}
        assert shown == set(resource.query_args(method))
        req = baserlib.Request(method, path, ["x"] * len(names), {n: ["0"] for n in shown | {"zzz"}}, None)
        with pytest.raises(baserlib.HttpBadRequest, match=r"query argument\(s\) 'zzz' not supported"):
            baserlib.check_query(resource, req)


def test_openapi_shows_the_flags_of_startup():
    params = openapi.document()["paths"]["/2/instances/{instance_name}/startup"]["put"]["parameters"]
    assert {p["name"] for p in params if p["in"] == "query"} == {"dry-run", "force", "no_remember", "reason"}
