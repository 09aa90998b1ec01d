#!/usr/bin/env python3
"""RAPI benchmarks of genet on a throw-away 3-node loopback cluster (fake hypervisor).

Run it as root with the python of genet's venv (so genet and its gnt-* commands are found):

    /tmp/venvtest/bin/python bench/rapi.py --out /tmp/bench-rapi.json

It starts its own loopback cluster (test/integration/loopback.py: every node a 127.0.0.x
address of this machine, no namespaces) in a fresh temporary directory, writes a RAPI
users file with a write user on the master, measures, and always stops the cluster again
(also on errors and Ctrl-C / SIGTERM). What it measures (see bench/README.md):

1. list    GET /2/instances?bulk=1 with 50 running diskless instances, on one keep-alive
           HTTPS connection, 200 requests: median, p90 ms
2. info    GET /2/info, 500 requests on one keep-alive connection: median, p90 ms
3. create  50 POST /2/instances (__version__ 1, diskless, fake hypervisor) at once from
           50 threads with a connection each, each then polling GET /2/jobs/ID until its
           job is final: instances/s from the first submit to the last job's end; once
           with "start": false, once with "start": true

Each figure comes with the CPU time every daemon spent on it (/proc, per request or
instance), and the bulk listing with a breakdown below the RAPI (the same luxi query
straight to masterd, without the live fields, and each node's instances_info RPC).
With --profile rapi|masterd|noded, node1's daemon is then restarted under cProfile (every
thread) for each workload again and its top functions are printed (and kept in the JSON).

Exit code: 0 when everything ran (whether or not targets were met; see "ok" in the JSON),
1 when the benchmark itself failed.
"""
from __future__ import annotations

import argparse
import base64
import collections
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "test" / "integration"))
from jobs import BenchError, log, median, print_table, summary_ms, wait_final  # noqa: E402
from loopback import RAPI_PORT, LoopbackCluster  # noqa: E402

from genet import errors, opcodes  # noqa: E402

# figure -> (target, goal, Ganeti 3.0.2 on this machine, "higher" if bigger is better)
TARGETS = {
    "list_median_ms": (10.0, 5.0, 128.0, "lower"),
    "info_median_ms": (5.0, None, 50.0, "lower"),
    "create_per_s": (30.0, 60.0, 1.1, "higher"),
}
FINAL = ("success", "error", "canceled")
USER = "bench"
# the instance fields that need the nodes (instances_info RPC), see genet.query
LIVE_FIELDS = ("oper_state", "oper_ram", "oper_vcpus", "status")
DAEMONS = ("genet-rapi", "genet-masterd", "genet-noded")


# ---------------------------------------------------------------- the cluster

class BenchCluster(LoopbackCluster):
    """A loopback cluster (a free block of addresses, see loopback.claim_block) with what the
    benchmark reads of its daemons."""
    CLUSTER_NAME = "genet-bench"

    def pid(self, node: str, daemon: str) -> int | None:
        try:
            pid = int((self.root(node) / f"var/run/genet/{daemon}.pid").read_text().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def log_tail(self, node: str, daemon: str, lines: int = 20) -> str:
        path = self.root(node) / f"var/log/genet/{daemon}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_cluster(directory: Path, nodes: int, noded_port: int, first: int | None
                  ) -> BenchCluster:
    try:
        cluster = BenchCluster(directory, nodes, port=noded_port, first=first)
    except RuntimeError as err:          # no free block of loopback addresses
        raise BenchError(f"{err}; pass --address") from None
    first = cluster.first
    log(f"starting a {nodes}-node loopback cluster in {directory} on 127.0.0.{first}-"
        f"{first + nodes - 1}, noded port {noded_port}")
    t0 = time.monotonic()
    try:
        cluster.start()
    except AssertionError as err:       # LoopbackCluster.run reports a failed command so
        raise BenchError(str(err)) from None
    log(f"cluster up in {time.monotonic() - t0:.1f}s")
    if cluster.pid("node1", "genet-rapi") is None:
        raise BenchError("genet-rapi does not run on node1; its log:\n"
                         + cluster.log_tail("node1", "genet-rapi"))
    return cluster


def stop_cluster(cluster: BenchCluster | None, directory: Path) -> None:
    log(f"stopping the loopback cluster in {directory}")
    if cluster is not None:
        cluster.stop()
        for node in cluster.names:
            for daemon in DAEMONS:
                if cluster.pid(node, daemon):
                    log(f"{daemon} of {node} still runs after genet-daemon stop")
    shutil.rmtree(directory, ignore_errors=True)


def write_users(cluster: BenchCluster, password: str) -> Path:
    """A write user; genet-rapi reads the file again when it changes."""
    path = cluster.root("node1") / "var/lib/genet/rapi/users"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".users.bench.tmp")
    tmp.write_text(f"# written by bench/rapi.py\n{USER} {{cleartext}}{password} write\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- HTTPS

def ts(value) -> float | None:
    """A queue timestamp as seconds: (seconds, microseconds) as Ganeti, or a number."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return value[0] + value[1] / 1e6
    return float(value)


class Rapi:
    """One keep-alive HTTPS connection (http.client, certificate not verified)."""

    def __init__(self, host: str, port: int, auth: tuple[str, str] | None, timeout: float = 120):
        self.conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                context=ssl._create_unverified_context())
        self.headers = {"Accept": "application/json"}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.connects = 0

    def connect(self) -> float:
        t0 = time.perf_counter()
        self.conn.connect()
        self.connects += 1
        return time.perf_counter() - t0

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes, float]:
        """(status, body, seconds from sending the request to having read the reply)."""
        if self.conn.sock is None:        # http.client (re)connects on its own: count it
            self.connect()
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        return response.status, payload, time.perf_counter() - t0

    def json(self, method: str, path: str, body=None):
        status, payload, _ = self.request(method, path, body)
        if status != 200:
            raise BenchError(f"{method} {path}: HTTP {status}: {payload[:500]!r}")
        return json.loads(payload)

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------- 1 and 2: reads

def create_running(cluster: BenchCluster, count: int, prefix: str) -> float:
    """``count`` running diskless instances in one SubmitManyJobs over luxi (setup only)."""
    client = cluster.client("node1")
    t0 = time.perf_counter()
    ops = [[opcodes.OpInstanceCreate(instance_name=f"{prefix}{i:02d}", disk_template="diskless",
                                     hypervisor="fake", start=True).to_dict()]
           for i in range(count)]
    reply = client.call("SubmitManyJobs", ops)
    bad = [r for r in reply if not r[0]]
    if bad:
        raise BenchError(f"SubmitManyJobs refused {len(bad)} creations: {bad[:3]}")
    for _, job_id in reply:
        status = wait_final(client, job_id, timeout=300)
        if status != "success":
            raise BenchError(f"creating an instance: job {job_id} ended {status}: "
                             f"{client.query_jobs([job_id], ['opresult'])[0]}")
    client.close()
    return time.perf_counter() - t0


def bench_get(rapi: Rapi, path: str, runs: int, warmup: int, check,
              cluster: BenchCluster) -> dict:
    """``runs`` sequential GETs of ``path`` on one connection after ``warmup`` untimed ones;
    with the CPU time each daemon spent per request."""
    for _ in range(warmup):
        check(rapi.json("GET", path))
    connects = rapi.connects
    times, sizes = [], set()
    cpu_before = cpu_snapshot(cluster)
    for _ in range(runs):
        status, payload, elapsed = rapi.request("GET", path)
        if status != 200:
            raise BenchError(f"GET {path}: HTTP {status}: {payload[:500]!r}")
        times.append(elapsed)
        sizes.add(len(payload))
    cpu = cpu_used(cpu_before, cpu_snapshot(cluster), runs)
    check(json.loads(payload))
    result = summary_ms(times)
    result.update(path=path, warmup=warmup, reply_bytes=sorted(sizes),
                  reconnects=rapi.connects - connects, cpu_ms_per_request=cpu)
    log(f"GET {path}: CPU ms per request: {cpu_text(cpu)}")
    return result


def luxi_breakdown(cluster: BenchCluster, fields: list[str], runs: int = 30) -> dict:
    """Where a bulk instance listing spends its time below the RAPI: the same luxi Query
    straight to masterd, the query without the live fields, and each node's
    instances_info RPC (what the live fields cost) called directly."""
    from genet.rpc import RpcClient
    client = cluster.client("node1")

    def timed(call, n=runs) -> dict:
        call()
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            samples.append(time.perf_counter() - t0)
        s = summary_ms(samples)
        return {"median_ms": s["median_ms"], "p90_ms": s["p90_ms"], "runs": n}

    static = [f for f in fields if f not in LIVE_FIELDS]
    out = {"luxi_query_all_fields": timed(lambda: client.call("Query", "instance", fields, None)),
           "luxi_query_config_fields_only": timed(
               lambda: client.call("Query", "instance", static, None)),
           "luxi_query_live_fields_only": timed(
               lambda: client.call("Query", "instance", ["name", *LIVE_FIELDS], None))}
    placed = collections.Counter(
        row[1][1] for row in client.call("Query", "instance", ["name", "pnode"], None)["data"])
    client.close()
    rpc = RpcClient(cluster.root("node1") / "var/lib/genet/server.pem", cluster.port)
    per_node = {}
    for node in cluster.names:
        address = cluster.address(node)
        per_node[node] = timed(lambda: rpc.call(node, address, "instances_info", [["fake"]])
                               .raise_on_error("instances_info"), 20)
        per_node[node]["instances"] = placed.get(node, 0)
        per_node[node]["version_rpc_ms"] = timed(lambda: rpc.call(node, address, "version"),
                                                 20)["median_ms"]
    out["instances_info_rpc"] = per_node
    out["instances_info_rpc_all_nodes_parallel"] = timed(
        lambda: rpc.call_many({n: cluster.address(n) for n in cluster.names}, "instances_info",
                              [["fake"]]), 20)
    return out


def bench_list(cluster: BenchCluster, auth, runs: int, count: int) -> dict:
    from genet.rapi.rlib2 import I_FIELDS

    def check(reply):
        if not isinstance(reply, list) or len(reply) < count:
            raise BenchError(f"GET /2/instances?bulk=1 gave {len(reply)} instances, "
                             f"expected {count}")
        down = [i["name"] for i in reply if i.get("status") != "running"]
        if down:
            raise BenchError(f"instances not running in the listing: {down[:5]}")

    rapi = Rapi(cluster.address("node1"), RAPI_PORT, auth)
    handshake = rapi.connect()
    result = bench_get(rapi, "/2/instances?bulk=1", runs, 10, check, cluster)
    rapi.close()
    result["tls_handshake_ms"] = round(1000 * handshake, 2)
    result["instances"] = count
    log(f"list: GET /2/instances?bulk=1 ({count} instances, {result['reply_bytes'][0]} bytes): "
        f"median {result['median_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms ({runs} requests, "
        f"{result['reconnects']} reconnects)")
    result["breakdown"] = luxi_breakdown(cluster, I_FIELDS)
    b = result["breakdown"]
    log(f"list: the same luxi Query straight to masterd {b['luxi_query_all_fields']['median_ms']:.2f}"
        f" ms; config fields only {b['luxi_query_config_fields_only']['median_ms']:.2f} ms; "
        f"instances_info RPC to all nodes {b['instances_info_rpc_all_nodes_parallel']['median_ms']:.2f}"
        " ms (" + ", ".join(f"{n}: {v['median_ms']:.1f} ms for {v['instances']}"
                            for n, v in b["instances_info_rpc"].items()) + ")")
    return result


def bench_info(cluster: BenchCluster, auth, runs: int) -> dict:
    def check(reply):
        if not isinstance(reply, dict) or reply.get("master") != "node1":
            raise BenchError(f"GET /2/info gave {str(reply)[:300]}")

    rapi = Rapi(cluster.address("node1"), RAPI_PORT, auth)
    rapi.connect()
    result = bench_get(rapi, "/2/info", runs, 10, check, cluster)
    rapi.close()
    client = cluster.client("node1")
    samples = []
    for _ in range(100):
        t0 = time.perf_counter()
        client.call("QueryClusterInfo")
        samples.append(time.perf_counter() - t0)
    client.close()
    result["luxi_query_cluster_info_median_ms"] = summary_ms(samples)["median_ms"]
    log(f"info: GET /2/info median {result['median_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms "
        f"({runs} requests, {result['reconnects']} reconnects); QueryClusterInfo over luxi "
        f"{result['luxi_query_cluster_info_median_ms']:.2f} ms")
    return result


# ---------------------------------------------------------------- 3: parallel creates

def create_body(name: str, start: bool) -> dict:
    return {"__version__": 1, "name": name, "disk_template": "diskless", "disks": [],
            "nics": [], "hypervisor": "fake", "start": start}


def bench_create(cluster: BenchCluster, auth, count: int, start: bool, prefix: str,
                 poll: float, timeout: float = 300) -> dict:
    """``count`` threads, a connection each (opened before the start line), POST at once,
    then each polls its job every ``poll`` seconds until it is final."""
    host = cluster.address("node1")
    barrier = threading.Barrier(count + 1)
    rows: list[dict] = [{} for _ in range(count)]

    def worker(i: int) -> None:
        row = rows[i]
        row["name"] = f"{prefix}{i:02d}"
        rapi = Rapi(host, RAPI_PORT, auth)
        try:
            row["handshake_ms"] = round(1000 * rapi.connect(), 2)
        except (OSError, http.client.HTTPException) as err:
            row["error"] = f"connecting: {type(err).__name__}: {err}"
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            row.setdefault("error", "the other threads did not get ready within 60s")
        if "error" in row:
            rapi.close()
            return
        try:
            row["submit_at"] = time.time()
            status, payload, elapsed = rapi.request("POST", "/2/instances",
                                                    create_body(row["name"], start))
            row["submit_ms"] = round(1000 * elapsed, 2)
            if status != 200:
                row["error"] = f"POST /2/instances: HTTP {status}: {payload[:300]!r}"
                return
            job_id = row["job_id"] = json.loads(payload)
            polls = 0
            while True:
                job = rapi.json("GET", f"/2/jobs/{job_id}")
                polls += 1
                if job.get("status") in FINAL:
                    break
                if time.time() - row["submit_at"] > timeout:
                    row["error"] = f"job {job_id} not final after {timeout:.0f}s: {job.get('status')}"
                    return
                time.sleep(poll)
            row["seen_at"] = time.time()
            row["polls"] = polls
            row["status"] = job["status"]
            for key in ("received_ts", "start_ts", "end_ts"):
                row[key] = ts(job.get(key))
            if job["status"] != "success":
                row["error"] = f"job {job_id} ended {job['status']}: {str(job.get('opresult'))[:300]}"
            row["reconnects"] = rapi.connects - 1
        except Exception as err:        # noqa: BLE001 - recorded, counted as a failed creation
            row["error"] = f"{type(err).__name__}: {err}"
        finally:
            rapi.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        raise BenchError(f"{count} threads could not all connect within 60s") from None
    cpu_before = cpu_snapshot(cluster)
    for thread in threads:
        thread.join(timeout + 60)
    cpu = cpu_used(cpu_before, cpu_snapshot(cluster), count)
    failed = [r for r in rows if "error" in r]
    done = [r for r in rows if "error" not in r]
    result: dict = {"instances": count, "start": start, "poll_interval_s": poll,
                    "failed": len(failed), "errors": [r["error"] for r in failed][:10],
                    "cpu_ms_per_instance": cpu, "jobs": rows}
    if not done:
        raise BenchError(f"every creation failed; first: {failed[0]['error'] if failed else '?'}")
    first_submit = min(r["submit_at"] for r in rows if "submit_at" in r)
    last_end = max(r["end_ts"] for r in done)
    last_seen = max(r["seen_at"] for r in done)
    result.update(
        seconds_to_last_end=round(last_end - first_submit, 4),
        seconds_to_last_seen=round(last_seen - first_submit, 4),
        per_s=round(len(done) / (last_end - first_submit), 2),
        per_s_seen=round(len(done) / (last_seen - first_submit), 2),
        submit=summary_ms([r["submit_ms"] / 1000 for r in rows if "submit_ms" in r]),
        queue_wait_median_ms=round(1000 * median([r["start_ts"] - r["received_ts"] for r in done]), 2),
        run_median_ms=round(1000 * median([r["end_ts"] - r["start_ts"] for r in done]), 2),
        submit_to_end_median_ms=round(1000 * median([r["end_ts"] - r["submit_at"] for r in done]), 2),
        polls=sum(r.get("polls", 0) for r in rows),
        handshake_median_ms=round(median([r["handshake_ms"] for r in rows if "handshake_ms" in r]), 2))
    del result["submit"]["all_ms"]
    log(f"create (start {str(start).lower()}): {len(done)} of {count} instances in "
        f"{result['seconds_to_last_end']:.2f}s = {result['per_s']:.1f}/s to the last job's end "
        f"({result['per_s_seen']:.1f}/s until the clients saw it); POST median "
        f"{result['submit']['median_ms']:.1f} ms, max {result['submit']['max_ms']:.1f} ms; job "
        f"queue wait median {result['queue_wait_median_ms']:.0f} ms, run {result['run_median_ms']:.0f}"
        f" ms" + (f"; {len(failed)} FAILED: {failed[0]['error']}" if failed else ""))
    log(f"create (start {str(start).lower()}): CPU ms per instance: {cpu_text(cpu)}")
    return result


def check_created(cluster: BenchCluster, prefix: str, count: int, start: bool) -> None:
    client = cluster.client("node1")
    reply = client.call("Query", "instance", ["name", "status"], ["=~", "name", f"^{prefix}"])
    client.close()
    states = {row[0][1]: row[1][1] for row in reply["data"]}
    want = "running" if start else "ADMIN_down"
    wrong = {n: s for n, s in states.items() if s != want}
    if len(states) != count or wrong:
        raise BenchError(f"after the creates: {len(states)} of {count} instances {prefix}*, "
                         f"not {want}: {dict(list(wrong.items())[:5])}")


# ---------------------------------------------------------------- CPU accounting

def cpu_snapshot(cluster: BenchCluster) -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds so far of every daemon of the cluster, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for node in cluster.names:
        for daemon in DAEMONS:
            pid = cluster.pid(node, daemon)
            if not pid:
                continue
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[f"{node}/{daemon}"] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return out


def cpu_used(before: dict, after: dict, units: int) -> dict:
    """CPU per process between two snapshots, in ms per request or instance."""
    used = {}
    for label, (user, system) in after.items():
        if label in before:
            u, s = user - before[label][0], system - before[label][1]
            used[label] = {"user_ms": round(1000 * u / units, 2), "system_ms": round(1000 * s / units, 2),
                           "total_ms": round(1000 * (u + s) / units, 2)}
    used["all"] = {"total_ms": round(sum(v["total_ms"] for v in used.values()), 2)}
    return used


def cpu_text(used: dict) -> str:
    return ", ".join(f"{label.replace('genet-', '')} {v['total_ms']:.1f}"
                     for label, v in sorted(used.items(), key=lambda kv: -kv[1]["total_ms"])
                     if label != "all")


# ---------------------------------------------------------------- --profile (cProfile)

PROFILED = {"rapi": ("genet-rapi", "genet.daemons.rapi"),
            "masterd": ("genet-masterd", "genet.daemons.masterd"),
            "noded": ("genet-noded", "genet.daemons.noded")}


def serve_profiled(module: str, out: str, clock: str) -> None:
    """Inside node1's environment: run ``module``'s main() with a cProfile profiler in every
    thread (as bench/profile_masterd.py does for masterd); SIGUSR1 empties every profile (so
    start-up and warm-up are left out), the merged statistics are written to ``out`` when
    the daemon ends (SIGTERM)."""
    import cProfile
    import importlib
    import pstats
    timer = time.thread_time if clock == "cpu" else time.perf_counter
    profiles: list = []
    lock = threading.Lock()

    def start_thread_profile(frame, event, arg):
        prof = cProfile.Profile(timer)
        with lock:
            profiles.append(prof)
        prof.enable()   # replaces this hook for the calling thread

    main_prof = cProfile.Profile(timer)
    profiles.append(main_prof)
    threading.setprofile(start_thread_profile)
    real_exit = os._exit

    def dump_and_exit(code):
        threading.setprofile(None)
        main_prof.disable()
        stats = None
        with lock:
            for prof in profiles:
                try:
                    if stats is None:
                        stats = pstats.Stats(prof)
                    else:
                        stats.add(prof)
                except (TypeError, ValueError):   # a profile that saw no call at all
                    continue
        if stats is not None:
            stats.dump_stats(out)
        real_exit(code)

    def clear(signum, frame):
        with lock:             # the functions running now lose their totals, nothing else
            for prof in profiles:
                prof.clear()

    os._exit = dump_and_exit   # masterd and genet-rapi end with os._exit(0)
    signal.signal(signal.SIGUSR1, clear)
    daemon = importlib.import_module(module)
    main_prof.enable()
    try:
        daemon.main([])
    finally:
        dump_and_exit(0)       # genet-noded returns from main()


def run_in_node(cluster: BenchCluster, code: str) -> None:
    cluster.run("node1", sys.executable, "-c", code)


def profile_workload(cluster: BenchCluster, which: str, name: str, warmup, workload, clock: str,
                     outdir: Path, top: int) -> dict:
    """Restart node1's ``which`` daemon under cProfile, run ``warmup()``, empty the profiles,
    run ``workload()``, stop the daemon (the statistics are written), start the normal one
    again; the top functions per request or instance."""
    import pstats
    daemon, module = PROFILED[which]
    out = outdir / f"{which}-{name}-{clock}.pstats"
    out.unlink(missing_ok=True)
    run_in_node(cluster, f"from genet import daemon_util; daemon_util.stop({daemon!r})")
    logfile = open(cluster.root("node1") / f"var/log/genet/{daemon}-profiled.log", "ab")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-profiled",
                             module, "--profile-out", str(out), "--profile-clock", clock],
                            env=cluster.env("node1"), stdin=subprocess.DEVNULL, stdout=logfile,
                            stderr=subprocess.STDOUT, start_new_session=True)
    logfile.close()
    try:
        deadline = time.monotonic() + 60
        while cluster.pid("node1", daemon) != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"profiled {daemon} did not start; see its log:\n"
                                 + cluster.log_tail("node1", f"{daemon}-profiled"))
            time.sleep(0.05)
        if which == "masterd":
            time.sleep(0.5)             # its start-up work (vote, queue recovery) is done
        warmup()
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(0.2)
        detail = workload()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        cluster.run("node1", "genet-daemon", "start")
    if not out.exists():
        raise BenchError(f"no profile written to {out}; see "
                         f"{cluster.root('node1')}/var/log/genet/{daemon}-profiled.log")
    stats = pstats.Stats(str(out))
    units = detail.get("units") or 1
    rows = []
    for (path, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        where = path
        for marker in ("/genet/", "/site-packages/", "/lib/python3"):
            if marker in path:
                where = path.split(marker, 1)[1]
                break
        rows.append({"function": f"{func} ({where}:{line})", "calls": nc,
                     "own_ms": 1000 * tt / units, "cumulative_ms": 1000 * ct / units})
    return {"daemon": daemon, "workload": name, "clock": clock, "detail": detail,
            "pstats": str(out), "unit": detail.get("unit"),
            "top_own": [dict(r, own_ms=round(r["own_ms"], 3), cumulative_ms=round(r["cumulative_ms"], 3))
                        for r in sorted(rows, key=lambda r: -r["own_ms"])[:top]],
            "top_cumulative": [dict(r, own_ms=round(r["own_ms"], 3),
                                    cumulative_ms=round(r["cumulative_ms"], 3))
                               for r in sorted(rows, key=lambda r: -r["cumulative_ms"])[:top * 2]]}


def run_profiles(cluster: BenchCluster, auth, read_auth, args, names: list[str],
                 outdir: Path) -> list[dict]:
    """cProfile of node1's daemons (args.profile) during the workloads ``names``."""
    outdir.mkdir(parents=True, exist_ok=True)
    host = cluster.address("node1")

    def gets(path: str, runs: int):
        def run():
            rapi = Rapi(host, RAPI_PORT, read_auth)
            samples = []
            for _ in range(runs):
                status, _, elapsed = rapi.request("GET", path)
                if status != 200:
                    raise BenchError(f"GET {path}: HTTP {status}")
                samples.append(elapsed)
            rapi.close()
            return {"units": runs, "unit": "request", "median_ms": summary_ms(samples)["median_ms"]}
        return run

    counter = iter(range(1000))

    def creates(start: bool, count: int):
        def run():
            r = bench_create(cluster, auth, count, start, f"bench-p{next(counter):03d}-",
                             args.poll_interval)
            return {"units": r["instances"], "unit": "instance", "per_s": r["per_s"],
                    "failed": r["failed"]}
        return run

    workloads = {"list": (gets("/2/instances?bulk=1", 3), gets("/2/instances?bulk=1",
                                                             args.profile_requests)),
                 "info": (gets("/2/info", 3), gets("/2/info", args.profile_requests)),
                 "create": (creates(False, 2), creates(False, args.creates)),
                 "create-start": (creates(True, 2), creates(True, args.creates))}
    profiles = []
    for which in args.profile:
        for name in names:
            warmup, workload = workloads[name]
            log(f"profiling {PROFILED[which][0]} ({args.profile_clock} clock) during '{name}'")
            profiles.append(profile_workload(cluster, which, name, warmup, workload,
                                             args.profile_clock, outdir, args.profile_top))
    return profiles


def print_profiles(profiles: list[dict], lines: int = 15) -> None:
    for prof in profiles:
        unit = prof["unit"]
        print(f"\n{prof['daemon']} under cProfile ({prof['clock']} clock, summed over threads) "
              f"during '{prof['workload']}': {prof['detail']}")
        print(f"  by own time:        {'calls':>8}  own ms/{unit}  cum ms/{unit}")
        for r in prof["top_own"][:lines]:
            print(f"  {r['calls']:>28}  {r['own_ms']:10.3f}  {r['cumulative_ms']:10.3f}  {r['function']}")
        print(f"  by cumulative time: {'calls':>8}  own ms/{unit}  cum ms/{unit}")
        for r in prof["top_cumulative"][:lines + 10]:
            print(f"  {r['calls']:>28}  {r['own_ms']:10.3f}  {r['cumulative_ms']:10.3f}  {r['function']}")


# ---------------------------------------------------------------- report

def verdict(key: str, value: float) -> str:
    target, goal, _, sense = TARGETS[key]
    better = (lambda a, b: a >= b) if sense == "higher" else (lambda a, b: a <= b)
    if goal is not None and better(value, goal):
        return "goal met"
    if better(value, target):
        return "ok"
    return "MISSED"


def table_rows(results: dict) -> list[dict]:
    rows = []

    def add(figure, value, unit, key=None, digits=2):
        row = {"figure": figure, "measured": value, "unit": unit,
               "measured_text": f"{value:.{digits}f} {unit}", "target": "-", "ganeti": "-"}
        if key:
            target, goal, gnt, sense = TARGETS[key]
            sign = ">=" if sense == "higher" else "<="
            row["target"] = f"{sign} {target:g}" + (f" (goal {goal:g})" if goal else "")
            row["ganeti"] = f"{gnt:g} {unit}" if gnt is not None else "-"
            row["status"] = verdict(key, value)
        rows.append(row)

    if "list" in results:
        r = results["list"]
        add(f"GET /2/instances?bulk=1, {r['instances']} instances, median of {r['runs']}",
            r["median_ms"], "ms", "list_median_ms")
        add("GET /2/instances?bulk=1: p90", r["p90_ms"], "ms")
        b = r["breakdown"]
        add("  same luxi Query straight to masterd, median",
            b["luxi_query_all_fields"]["median_ms"], "ms")
        add("  luxi Query, config fields only (no instances_info RPC), median",
            b["luxi_query_config_fields_only"]["median_ms"], "ms")
    if "info" in results:
        r = results["info"]
        add(f"GET /2/info, median of {r['runs']}", r["median_ms"], "ms", "info_median_ms")
        add("GET /2/info: p90", r["p90_ms"], "ms")
    for key, label in (("create", "start false"), ("create_start", "start true")):
        if key not in results:
            continue
        r = results[key]
        add(f"{r['instances']} parallel POST /2/instances ({label}): first submit -> last job end",
            r["per_s"], "inst/s", "create_per_s", 1)
        add(f"  ({label}) until the clients saw the last job final", r["per_s_seen"], "inst/s",
            digits=1)
        add(f"  ({label}) POST -> job id, median", r["submit"]["median_ms"], "ms", digits=1)
        if r["failed"]:
            rows.append({"figure": f"  ({label}) failed creations", "measured": r["failed"],
                         "unit": "", "measured_text": f"{r['failed']} of {r['instances']}",
                         "target": "0", "ganeti": "-", "status": "MISSED"})
    return rows


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--address", type=int, metavar="N",
                        help="node1 is 127.0.0.N, node2 127.0.0.N+1, ... (default: 11, or the "
                             "next free block of ten)")
    parser.add_argument("--noded-port", type=int, default=21811)
    parser.add_argument("--instances", type=int, default=50,
                        help="running instances for the bulk listing")
    parser.add_argument("--list-requests", type=int, default=200)
    parser.add_argument("--info-requests", type=int, default=500)
    parser.add_argument("--creates", type=int, default=50, help="parallel creations (threads)")
    parser.add_argument("--poll-interval", type=float, default=0.1,
                        help="seconds between two GET /2/jobs/ID of one creating thread")
    parser.add_argument("--anonymous-reads", action="store_true",
                        help="send the GETs of 1 and 2 without credentials")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["list", "info", "create", "create-start"],
                        help="leave out a benchmark (repeatable)")
    parser.add_argument("--profile", action="append", default=[], choices=sorted(PROFILED),
                        help="afterwards, run node1's daemon under cProfile during each "
                             "workload again (repeatable)")
    parser.add_argument("--profile-clock", choices=["cpu", "wall"], default="cpu",
                        help="cpu: thread CPU time; wall: elapsed time, blocking included "
                             "(summed over threads)")
    parser.add_argument("--profile-requests", type=int, default=100)
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--profile-dir", help="where the pstats files go (default: a new "
                                              "/tmp/genet-bench-rapi-prof-* directory)")
    parser.add_argument("--serve-profiled", metavar="MODULE", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true",
                        help="debugging: do not stop the cluster at the end")
    args = parser.parse_args(argv)
    if args.serve_profiled:
        serve_profiled(args.serve_profiled, args.profile_out, args.profile_clock)
        return 0
    if os.geteuid() != 0:
        print("bench: needs root (as the other benchmarks)", file=sys.stderr)
        return 1

    def on_sigterm(signum, frame):
        signal.signal(signum, signal.SIG_IGN)   # a second one must not cut the cleanup short
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)

    directory = Path(tempfile.mkdtemp(prefix="genet-bench-rapi-", dir="/tmp"))
    results: dict = {}
    doc = {"benchmark": "genet bench/rapi.py", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "host": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "kernel": platform.release(), "loadavg_at_start": os.getloadavg()},
           "params": {k: v for k, v in vars(args).items() if k not in ("out",)},
           "cluster_dir": str(directory), "results": results}
    failure = None
    cluster = None
    try:
        cluster = start_cluster(directory, args.nodes, args.noded_port, args.address)
        doc["rapi"] = f"https://{cluster.address('node1')}:{RAPI_PORT}"
        password = secrets.token_hex(12)
        write_users(cluster, password)
        auth = (USER, password)
        read_auth = None if args.anonymous_reads else auth
        # the users file is re-read on change: check that the write user is known now (a
        # POST without __version__ passes authentication and is refused before any job)
        probe = Rapi(cluster.address("node1"), RAPI_PORT, auth)
        status, payload, _ = probe.request("POST", "/2/instances", {})
        probe.close()
        if status != 400:
            raise BenchError(f"the write user is refused: POST /2/instances {{}} gave HTTP "
                             f"{status} (expected 400): {payload[:300]!r}")

        if "list" not in args.skip or "info" not in args.skip:
            seconds = create_running(cluster, args.instances, "bench-run")
            log(f"{args.instances} running diskless instances created over luxi in {seconds:.1f}s")
            results["setup_instances_s"] = round(seconds, 2)
        if "list" not in args.skip:
            results["list"] = bench_list(cluster, read_auth, args.list_requests, args.instances)
        if "info" not in args.skip:
            results["info"] = bench_info(cluster, read_auth, args.info_requests)
        outdir = None
        if args.profile:
            outdir = Path(args.profile_dir or tempfile.mkdtemp(prefix="genet-bench-rapi-prof-",
                                                               dir="/tmp"))
        if args.profile:    # the reads while the cluster has just the listed instances
            results["profiles"] = run_profiles(cluster, auth, read_auth, args,
                                               [n for n in ("list", "info") if n not in args.skip],
                                               outdir)
        if "create" not in args.skip:
            results["create"] = bench_create(cluster, auth, args.creates, False, "bench-cs",
                                             args.poll_interval)
            check_created(cluster, "bench-cs", args.creates - results["create"]["failed"], False)
        if "create-start" not in args.skip:
            results["create_start"] = bench_create(cluster, auth, args.creates, True, "bench-cr",
                                                   args.poll_interval)
            check_created(cluster, "bench-cr", args.creates - results["create_start"]["failed"],
                          True)
        if args.profile:
            results.setdefault("profiles", []).extend(run_profiles(
                cluster, auth, read_auth, args,
                [n for n in ("create", "create-start") if n not in args.skip], outdir))
            log(f"profiles (pstats) in {outdir}")
    except (BenchError, errors.GenericError, subprocess.SubprocessError, OSError,
            http.client.HTTPException) as err:
        failure = f"{type(err).__name__}: {err}"
        log(f"FAILED: {failure}")
    except KeyboardInterrupt:
        failure = "interrupted"
        log("interrupted")
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)   # let the cluster be stopped
        if args.keep:
            log(f"--keep: cluster left running in {directory}; stop it with "
                f"`genet-daemon stop` in each node's environment (GENET_ROOT={directory}/nodeN/"
                f"root GENET_HOSTNAME=nodeN GENET_HOSTS={directory}/hosts)")
        else:
            stop_cluster(cluster, directory)

    rows = table_rows(results)
    doc["table"] = rows
    doc["error"] = failure
    doc["ok"] = failure is None and all(r.get("status") != "MISSED" for r in rows)
    print()
    print_table(rows)
    if "profiles" in results:
        print_profiles(results["profiles"])
    if failure:
        print(f"\nbenchmark failed: {failure}")
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        log(f"results written to {args.out}")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
