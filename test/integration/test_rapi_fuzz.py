"""Fuzzing genet-rapi from its own /2/openapi.json, with hypothesis, on a 2-node loopback cluster.

Requests are built from the documented paths: documented or random methods, real or
random names in the path, random query strings, bodies drawn from the opcode schemas
and then broken (wrong types, unknown fields, huge strings, deep nesting, unicode,
nulls), and random Authorization values and headers. Whatever comes in, the server
must answer: never 5xx except 501/502/503, always Ganeti's {code, message, explain}
error body, never a write for a user without write access. Most mutating requests
carry ?dry-run=1 (and then the configuration must not change); a smaller share runs
for real and is cleaned up. Afterwards masterd answers, /2/info is 200 and
gnt-cluster verify passes.
"""
from __future__ import annotations

import base64
import collections
import http.client
import json
import re
import ssl
import time
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback import LoopbackCluster

HOST, PORT = "", 5080            # HOST: node1's address, set by the cluster fixture
WRITER, READER = ("admin", "fuzz-w"), ("viewer", "fuzz-r")
CTX = ssl._create_unverified_context()
MUTATING = ("PUT", "POST", "DELETE")
# instances, group and network the fuzzer may really change; nodes are only ever named at random
# in the real share, so no request can take a node offline
OWN = {"instance_name": ["fz-web", "fz-db"], "group_name": ["fz-grp"], "network_name": ["fz-net"]}
REAL = {"node_name": ["node1", "node2"], "instance_name": OWN["instance_name"],
        "group_name": ["default", "fz-grp"], "network_name": ["fz-net"],
        "resource": ["instance", "node", "group", "network", "job", "cluster", "os", "export"],
        "disk": ["0", "1", "15", "16"]}
WORDS = ["node1", "node2", "fz-web", "fz-db", "fz-grp", "fz-net", "default", "noop", "image", "fake", "kvm",
         "diskless", "file", "sharedfile", "live", "non-live", "bridged", "routed", "br0", "10.20.0.0/24",
         "10.20.0.1", "fd00::/64", "aa:00:01", "replace_auto", "local", "preferred", "last_resort",
         "unallocable", "64M", "1G", "none", "default", "success", "error", "canceled", "soft", "hard", "full",
         "name", "status", "", " ", "..", "../../etc/passwd", "\u00e9t\u00e9", "\U0001f600", "a" * 300]
QUERY_KEYS = ["bulk", "dry-run", "force", "static", "type", "tag", "fields", "reason", "no_remember",
              "nostartup", "os", "mode", "shutdown_timeout", "auto-promote", "ignore_size",
              "ignore_secondaries", "x"]
SENT = {"count": 0}
STATUSES: collections.Counter = collections.Counter()     # (phase, status) of every fuzz reply
INITIAL: dict = {}          # cluster settings the real share may change, restored by clean_up


class Connection:
    """One kept-alive HTTPS connection; a new one when the server closed it."""

    def __init__(self):
        self.conn = None

    def send(self, method: str, url: str, data: bytes | None, headers: dict) -> tuple[int, dict, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(HOST, PORT, context=CTX, timeout=60)
            try:
                self.conn.request(method, url, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                SENT["count"] += 1
                reply_headers = {k.lower(): v for k, v in resp.getheaders()}
                if resp.will_close:
                    self.close()
                return resp.status, reply_headers, payload
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest,
                    http.client.ResponseNotReady, ssl.SSLError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


CONN = Connection()


def call(method: str, url: str, body=None, user=WRITER):
    headers = {"Content-Type": "application/json"}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    status, _, payload = CONN.send(method, url, None if body is None else json.dumps(body).encode(), headers)
    return status, json.loads(payload) if payload else None


def ok(method: str, url: str, body=None):
    status, value = call(method, url, body)
    assert status == 200, (method, url, status, value)
    return value


def wait_job(job_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ok("GET", f"/2/jobs/{job_id}")
        if job["status"] in ("success", "error", "canceled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def run_job(method: str, url: str, body=None):
    job = wait_job(ok(method, url, body))
    assert job["status"] == "success", job
    return job["opresult"][0]


def wait_queue_idle(cluster, timeout: float = 120) -> None:
    """Every job finished; queued ones still waiting after the timeout are a failure."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [row for row in cluster.client().query_jobs(None, ["id", "status"])
                if row and row[1] in ("queued", "waiting", "running", "canceling")]
        if not busy:
            return
        assert time.monotonic() < deadline, f"jobs still unfinished: {busy[:10]}"
        time.sleep(0.2)


def config_serial(cluster) -> int:
    return cluster.stored_config("node1")["serial_no"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    global HOST
    c = LoopbackCluster(tmp_path_factory.mktemp("rapifuzz"), nodes=2)
    HOST = c.address("node1")
    try:
        c.start()
        users = c.root("node1") / "var/lib/genet/rapi/users"
        users.parent.mkdir(parents=True, exist_ok=True)
        users.write_text(f"{WRITER[0]} {WRITER[1]} write\n{READER[0]} {{cleartext}}{READER[1]} read\n")
        run_job("POST", "/2/instances", {"__version__": 1, "name": "fz-web", "disk_template": "diskless",
                                         "pnode": "node1", "beparams": {"memory": 32}})
        run_job("POST", "/2/instances", {"__version__": 1, "name": "fz-db", "disk_template": "file",
                                         "pnode": "node2", "disks": [{"size": 4}], "start": False})
        run_job("POST", "/2/groups", {"name": "fz-grp"})
        run_job("POST", "/2/networks", {"network_name": "fz-net", "network": "10.20.0.0/24"})
        info = ok("GET", "/2/info")
        INITIAL.update({k: info[k] for k in ("candidate_pool_size", "max_running_jobs", "modify_etc_hosts")})
        yield c
    finally:
        CONN.close()
        c.stop()


class Operations(list):
    def __repr__(self) -> str:       # hypothesis shows strategies' arguments; keep it short
        return f"<{len(self)} RAPI operations>"


@pytest.fixture(scope="module")
def api(cluster):
    """The documented operations: (path template, method, parameter names, body schema or None)."""
    doc = ok("GET", "/2/openapi.json")
    operations = []
    for path, item in sorted(doc["paths"].items()):
        for method, op in sorted(item.items()):
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            operations.append((path, method.upper(), re.findall(r"\{([^}]+)\}", path), schema))
    assert len(operations) > 60
    return Operations(operations)


# --- strategies ----------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
JSON_LEAF = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
             | st.floats(allow_nan=False, allow_infinity=False) | TEXT | st.sampled_from(WORDS))
ANY_JSON = st.recursive(JSON_LEAF, lambda kids: st.lists(kids, max_size=4)
                        | st.dictionaries(st.one_of(TEXT, st.sampled_from(WORDS)), kids, max_size=4),
                        max_leaves=15)


def from_schema(schema: dict | None, depth: int = 0) -> st.SearchStrategy:
    """Values valid for an OpenAPI schema (the subset genet's opcode schemas use)."""
    if not schema or depth > 6:
        return ANY_JSON
    if "enum" in schema:
        strategy = st.sampled_from(schema["enum"])
    elif "oneOf" in schema:
        strategy = st.one_of([from_schema(s, depth + 1) for s in schema["oneOf"]])
    else:
        kind = schema.get("type")
        if kind == "object":
            props = schema.get("properties") or {}
            required = schema.get("required") or []
            extra = schema.get("additionalProperties")
            if props:
                strategy = st.fixed_dictionaries(
                    {k: from_schema(props.get(k), depth + 1) for k in required},
                    optional={k: from_schema(v, depth + 1) for k, v in props.items() if k not in required})
            else:
                values = from_schema(extra, depth + 1) if isinstance(extra, dict) else ANY_JSON
                strategy = st.dictionaries(st.sampled_from(WORDS) | TEXT, values, max_size=3)
        elif kind == "array":
            items = schema.get("items")
            if isinstance(items, list):
                strategy = st.tuples(*[from_schema(i, depth + 1) for i in items]).map(list)
            else:
                strategy = st.lists(from_schema(items, depth + 1), max_size=3)
        elif kind == "string":
            strategy = st.sampled_from(WORDS) | TEXT
        elif kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            strategy = st.integers(min_value=low if low is not None else -5,
                                   max_value=high if high is not None else 100000)
        elif kind == "number":
            strategy = st.floats(min_value=schema.get("minimum"), max_value=schema.get("maximum"),
                                 allow_nan=False, allow_infinity=False)
        elif kind == "boolean":
            strategy = st.booleans()
        else:
            strategy = ANY_JSON
    return st.none() | strategy if schema.get("nullable") else strategy


@st.composite
def broken(draw, valid: st.SearchStrategy):
    """A valid body, then maybe broken: a field dropped, retyped, added, or nulled."""
    value = draw(valid)
    if not isinstance(value, dict) or not draw(st.booleans()):
        return value
    value = dict(value)
    action = draw(st.sampled_from(["drop", "retype", "add", "null"]))
    if action == "add" or not value:
        value[draw(st.sampled_from(["bogus", "__version__", "instance_name", "dry_run", "depends",
                                    "reason", "priority", "OP_ID"]) | TEXT)] = draw(ANY_JSON)
    else:
        key = draw(st.sampled_from(sorted(value)))
        if action == "drop":
            del value[key]
        elif action == "retype":
            value[key] = draw(ANY_JSON)
        else:
            value[key] = None
    return value


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


RAW_BODIES = st.sampled_from([
    b"", b"null", b"{", b"[1,", b"{\"a\": }", b"\xff\xfe\x00", b"NaN", b"Infinity", b"-Infinity", b"1e999",
    b"9" * 5000, b"{\"__version__\": 1, \"name\": \"" + b"x" * 200000 + b"\"}", deep(100), deep(2000),
    deep(100000), b"{\"a\":" * 5000 + b"1" + b"}" * 5000, b"\"" + b"\\ud800" * 100 + b"\"",
    json.dumps({"__version__": 1, "name": "\U0001f600" * 40}).encode(), b"[" + b"1," * 100000 + b"1]",
    b"\"" + b"y" * (1024 * 1024 + 10) + b"\"",                            # over the 1 MiB limit: 413
]) | st.binary(max_size=64)


def body_strategy(schema: dict | None) -> st.SearchStrategy:
    """Raw bytes to send, or None for no body."""
    as_json = lambda v: json.dumps(v).encode()
    as_utf8 = lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8")
    valid = from_schema(schema) if schema else ANY_JSON
    return st.one_of(
        st.none(),
        valid.map(as_json), valid.map(as_json), valid.map(as_utf8),      # mostly well-formed, to get deep
        broken(valid).map(as_json),
        ANY_JSON.map(as_json),
        RAW_BODIES,
    )


def path_value(name: str) -> st.SearchStrategy:
    real = st.sampled_from(REAL.get(name, ["x"]))
    random = st.one_of(TEXT, st.sampled_from(WORDS), st.integers(-5, 10 ** 20).map(str))
    encoded = random.map(lambda v: quote(v, safe=""))
    raw_slash = random.map(lambda v: quote(v, safe="/"))
    special = st.sampled_from(["..", "%2e%2e", "..%2F..%2Fetc", "%2F", "%00", "a%0Ab", "%zz", "~root"])
    return st.one_of(real, real, real, real, real, encoded, raw_slash, special)


def query_strategy() -> st.SearchStrategy:
    pair = st.tuples(st.sampled_from(QUERY_KEYS) | TEXT, st.sampled_from(["0", "1", "", "x", "-1", "yes"]) | TEXT)
    encoded = st.lists(pair, max_size=4).map(lambda pairs: urlencode(pairs, quote_via=quote))
    odd = st.sampled_from(["%zz", "&&&", "==", "a=%ff%fe", "bulk", "bulk=1&bulk=x", "fields=" + "a," * 500,
                           "tag=" + "t" * 200, ";;", "dry-run=1;force=1"])
    return st.one_of(st.just(""), st.just(""), encoded, encoded, odd)


HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
AUTH = st.one_of(
    st.just(None), st.just("writer"), st.just("reader"),
    st.tuples(st.sampled_from([WRITER[0], READER[0], "ghost", ""]), HEADER_VALUE).map(
        lambda up: "Basic " + base64.b64encode(f"{up[0]}:{up[1]}".encode()).decode()),
    st.sampled_from(["Basic", "Basic ", "Basic ====", "Basic !!!", "Bearer x", "Digest a=b", "basic Og==",
                     "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Negotiate", " "]),
    HEADER_VALUE.map(lambda v: "Basic " + v), HEADER_VALUE,
)
EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "Accept", "X-Forwarded-For", "X-Fuzz", "Accept-Encoding", "Cookie",
                     "User-Agent", "Expect"]),
    HEADER_VALUE, max_size=3)


@st.composite
def requests(draw, operations, auth=st.just("writer"), methods_random: bool = True):
    path, method, names, schema = draw(st.sampled_from(operations))
    if methods_random and draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"]))
    url = path
    for name in names:
        url = url.replace("{" + name + "}", draw(path_value(name)), 1)
    if draw(st.integers(0, 19)) == 0:
        url += draw(st.sampled_from(["/", "/x", "//", "/..", "/fields/more"]))
    query = draw(query_strategy())
    body = draw(body_strategy(schema)) if method != "GET" or draw(st.integers(0, 4)) == 0 else None
    return {"method": method, "url": url, "query": query, "body": body, "auth": draw(auth),
            "headers": draw(EXTRA_HEADERS) if draw(st.integers(0, 3)) == 0 else {}}


def send(req: dict, dry_run: bool) -> tuple[int, dict, bytes]:
    query = req["query"]
    if dry_run and req["method"] in MUTATING:
        query = (query + "&" if query else "") + "dry-run=1"     # the last value counts
    url = req["url"] + ("?" + query if query else "")
    headers = {"Content-Type": "application/json", **req["headers"]}
    auth = req["auth"]
    if auth in ("writer", "reader"):
        user = WRITER if auth == "writer" else READER
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    elif auth is not None:
        headers["Authorization"] = auth
    return CONN.send(req["method"], url, req["body"], headers)


def check_reply(req: dict, status: int, headers: dict, payload: bytes, phase: str) -> None:
    """No 5xx but the documented ones; every error in Ganeti's shape; no write without write access."""
    STATUSES[phase, status] += 1
    where = f"{req['method']} {req['url'][:200]}?{req['query'][:100]} auth={str(req['auth'])[:40]}"
    assert status < 500 or status in (501, 502, 503), f"{status} for {where}: {payload[:500]!r}"
    if status >= 400 and req["method"] != "HEAD":
        try:
            reply = json.loads(payload)
        except ValueError:
            raise AssertionError(f"{status} without a JSON body for {where}: {payload[:300]!r}") from None
        assert isinstance(reply, dict) and reply.get("code") == status, (where, reply)
        assert isinstance(reply.get("message"), str) and isinstance(reply.get("explain"), str), (where, reply)
    if status == 401:
        assert headers.get("www-authenticate") == 'Basic realm="Ganeti Remote API"', where
    bare = req["url"].split("?", 1)[0]
    writes = req["method"] in MUTATING and not bare.startswith("/2/query/") or re.fullmatch(
        r"/2/jobs/[^/]+/wait", bare)
    if writes and req["auth"] != "writer":
        assert status != 200, f"a user without write access got 200 for {where}"


FUZZ = settings(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


# --- the fuzz runs -----------------------------------------------------------------------------

def test_fuzz_as_the_write_user_with_dry_run(cluster, api):
    """When the write user sends anything with dry-run=1, no reply is a 500 and the config stays."""
    serial = config_serial(cluster)

    @settings(FUZZ, max_examples=1700)
    @given(req=requests(api))
    def fuzz(req):
        check_reply(req, *send(req, dry_run=True), phase="dry")

    fuzz()
    wait_queue_idle(cluster)
    assert config_serial(cluster) == serial, "a dry-run request changed the configuration"


def test_fuzz_anonymous_and_read_only(cluster, api):
    """When anonymous or read-only clients send anything, nothing is written and nothing is a 500."""
    serial = config_serial(cluster)

    @settings(FUZZ, max_examples=700)
    @given(req=requests(api, auth=st.sampled_from([None, "reader"])))
    def fuzz(req):
        check_reply(req, *send(req, dry_run=False), phase="readonly")

    fuzz()
    wait_queue_idle(cluster)
    assert config_serial(cluster) == serial, "a request without write access changed the configuration"


def test_fuzz_authorization_and_headers(cluster, api):
    """When the Authorization header or other headers are garbage, the answer is 401/4xx, never 5xx."""
    serial = config_serial(cluster)

    @settings(FUZZ, max_examples=400)
    @given(req=requests(api, auth=AUTH))
    def fuzz(req):
        check_reply(req, *send(req, dry_run=True), phase="headers")

    fuzz()
    wait_queue_idle(cluster)
    assert config_serial(cluster) == serial


def test_fuzz_real_share(cluster, api):
    """When a smaller share of writes runs for real, the server still never answers 5xx.

    Nodes and the default group are only named at random here, so no request can take a
    node offline or rename the default group; what the fuzzer creates is removed afterwards.
    """
    operations = Operations(op for op in api if "{node_name}" not in op[0] or op[1] == "GET")
    saved = dict(REAL)
    REAL.update(node_name=["fz-node-a", "ghost"], group_name=OWN["group_name"])
    try:
        @settings(FUZZ, max_examples=350)
        @given(req=requests(operations))
        def fuzz(req):
            check_reply(req, *send(req, dry_run=False), phase="real")

        fuzz()
    finally:
        REAL.update(saved)
    wait_queue_idle(cluster)


def test_cluster_survives_and_is_cleaned_up(cluster):
    """After the fuzzing masterd answers, /2/info is 200 and, once cleaned up, verify passes."""
    assert SENT["count"] >= 3000, SENT
    print("fuzz replies by phase and status:", sorted(STATUSES.items()))
    for phase in ("dry", "real"):       # enough requests got through to reach the logical units
        total = sum(n for (p, _), n in STATUSES.items() if p == phase)
        assert STATUSES[phase, 200] >= total * 0.05, sorted(STATUSES.items())
    info = cluster.client().call("QueryClusterInfo")
    assert info["name"] == "genet-test" and info["master"] == "node1"
    assert ok("GET", "/2/info")["name"] == "genet-test"
    clean_up(cluster)
    assert ok("GET", "/2/instances") == [] and ok("GET", "/2/networks") == []
    assert ok("GET", "/2/groups") == [{"name": "default", "uri": "/2/groups/default"}]
    cluster.run("node1", "gnt-cluster", "verify")


def clean_up(cluster) -> None:
    """Undo whatever the real share did: instances, exports, networks, groups, tags, cluster settings."""
    wait_queue_idle(cluster)
    run_job("PUT", "/2/modify", INITIAL)
    for inst in ok("GET", "/2/instances"):
        run_job("DELETE", f"/2/instances/{quote(inst['id'], safe='')}?shutdown_timeout=0")
    for line in cluster.run("node1", "gnt-backup", "list", "--no-headers", "--separator=|").stdout.split():
        cluster.run("node1", "gnt-backup", "remove", line.split("|")[1], check=False)
    nodes_elsewhere = [n["name"] for n in ok("GET", "/2/nodes?bulk=1")]
    run_job("PUT", "/2/groups/default/assign-nodes", {"nodes": nodes_elsewhere, "force": True})
    for net in ok("GET", "/2/networks?bulk=1"):
        for group, *_ in net["group_list"]:
            run_job("PUT", f"/2/networks/{quote(net['name'], safe='')}/disconnect", {"group_name": group})
        run_job("DELETE", f"/2/networks/{quote(net['name'], safe='')}")
    for group in ok("GET", "/2/groups"):
        if group["name"] != "default":
            run_job("DELETE", f"/2/groups/{quote(group['name'], safe='')}")
    tags = ok("GET", "/2/tags")
    if tags:
        run_job("DELETE", "/2/tags?" + urlencode([("tag", t) for t in tags], quote_via=quote))
    for node in ("node1", "node2"):
        tags = ok("GET", f"/2/nodes/{node}/tags")
        if tags:
            run_job("DELETE", f"/2/nodes/{node}/tags?" + urlencode([("tag", t) for t in tags], quote_via=quote))
