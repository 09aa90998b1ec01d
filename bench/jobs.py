#!/usr/bin/env python3
"""Job-path benchmarks of genet on a throw-away 3-node dev cluster (fake hypervisor).

Run it as root with the python of genet's venv (so genet and its gnt-* commands are found):

    /tmp/venvtest/bin/python bench/jobs.py --out /tmp/bench-jobs.json

It starts its own cluster in a fresh temporary directory, measures, and always stops the
cluster again (also on errors and Ctrl-C / SIGTERM). What it measures (see bench/README.md):

1. batch    200 OpTestDelay(0) jobs in one SubmitManyJobs, until all are final: jobs/s
2. latency  one job, submit -> final state seen by the client, 50 runs: median, p90 ms
3. cli      `gnt-debug delay 0` wall time, 20 runs: median ms (+ -X importtime if > goal)
4. bigcfg   latency again with 10,000 instances in the config (ratio big/empty), and the
            time of one config-changing job (OpTagsSet on the cluster), empty vs big

Order: latency on the fresh cluster, batch, cli; then bigcfg restarts the master's daemons
with the small config and measures the baseline, grows the config, restarts and measures
again, so both sides of the ratio run on daemons in the same state.

Exit code: 0 when everything ran (whether or not targets were met; see "ok" in the JSON),
1 when the benchmark itself failed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from genet import config, errors, luxi, opcodes
from genet.config_file import ConfigFile

REPO = Path(__file__).resolve().parent.parent
DEV_CLUSTER = REPO / "tools" / "dev-cluster"
FINAL = ("success", "error", "canceled")

# figure -> (target, goal, Ganeti 3.0.2 on this machine, "higher" if bigger is better)
TARGETS = {
    "batch_jobs_per_s": (100.0, 300.0, 3.4, "higher"),
    "latency_median_ms": (10.0, 5.0, 365.0, "lower"),
    "cli_median_ms": (120.0, 80.0, 556.0, "lower"),
    "bigcfg_latency_ratio": (1.5, None, None, "lower"),
}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- statistics

def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p90 of 50 samples is the 45th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))   # ceil
    return ordered[int(rank) - 1]


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"runs": len(ms), "median_ms": round(median(ms), 3),
            "p90_ms": round(percentile(ms, 90), 3), "min_ms": round(min(ms), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(statistics.fmean(ms), 3),
            "all_ms": [round(v, 3) for v in ms]}


# ---------------------------------------------------------------- the dev cluster

def dev_cluster(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEV_CLUSTER), *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def start_cluster(directory: Path, subnet: str | None, hypervisor: str = "fake") -> dict:
    """dev-cluster start --nodes 3 on ``subnet``, or on the free subnet dev-cluster picks."""
    log(f"starting a 3-node {hypervisor} dev cluster in {directory}")
    t0 = time.monotonic()
    proc = dev_cluster("start", "--nodes", "3", "--hypervisor", hypervisor, "--dir", str(directory),
                       *(["--subnet", subnet] if subnet else []))
    if proc.returncode != 0:
        raise BenchError(f"dev-cluster start failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    log(f"cluster up in {time.monotonic() - t0:.1f}s")
    return json.loads((directory / "cluster.json").read_text())


def stop_cluster(directory: Path) -> None:
    log(f"stopping the dev cluster in {directory}")
    proc = dev_cluster("stop", "--dir", str(directory), timeout=120)
    if proc.returncode != 0:
        log(f"dev-cluster stop failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def node_env(node: dict) -> dict[str, str]:
    """The caller's environment without GENET_*, plus the node's (as dev-cluster exec does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENET_")}
    env.update(node["env"])
    return env


def run_checked(argv: list[str], env: dict | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


# ---------------------------------------------------------------- jobs over luxi

def wait_final(client: luxi.Client, job_id: int, timeout: float = 60.0) -> str:
    """Follow a job with WaitForJobChange (as gnt-* commands do) until it is final."""
    deadline = time.monotonic() + timeout
    prev_info, prev_serial = None, 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"job {job_id} not final after {timeout:.0f}s (last {prev_info})")
        change = client.wait_for_job_change(job_id, ["status"], prev_info, prev_serial,
                                            min(10.0, remaining))
        if change is None:
            raise BenchError(f"job {job_id} is unknown to the master")
        if change == "nochange":
            continue
        for entry in change["log_entries"]:
            prev_serial = max(prev_serial, entry[0])
        prev_info = change["job_info"]
        if prev_info[0] in FINAL:
            return prev_info[0]


def run_job(client: luxi.Client, ops: list[dict], phases: list | None = None) -> tuple[float, str]:
    """Submit one job and wait for it; returns (seconds, final status).

    With ``phases``, appends the seconds SubmitJob took (the job is durable and
    replicated when it returns)."""
    t0 = time.perf_counter()
    job_id = client.submit_job(ops)
    if phases is not None:
        phases.append(time.perf_counter() - t0)
    status = wait_final(client, job_id)
    return time.perf_counter() - t0, status


def delay_op() -> dict:
    return opcodes.OpTestDelay(duration=0).to_dict()


def bench_batch(client: luxi.Client, jobs: int, repeats: int) -> dict:
    op = delay_op()
    rates, seconds = [], []
    for rep in range(1, repeats + 1):
        t0 = time.perf_counter()
        reply = client.call("SubmitManyJobs", [[op] for _ in range(jobs)])
        t_submitted = time.perf_counter()
        bad = [r for r in reply if not r[0]]
        if bad:
            raise BenchError(f"SubmitManyJobs refused {len(bad)} jobs: {bad[:3]}")
        ids = [r[1] for r in reply]
        # Follow the last job (normally the last to finish), then check all at once;
        # follow any still unfinished one until a single QueryJobs shows all final.
        pending = list(ids)
        statuses: dict[int, str] = {}
        while pending:
            wait_final(client, pending[-1], timeout=300)
            rows = client.query_jobs(pending, ["id", "status"])
            for row in rows:
                if row is not None and row[1] in FINAL:
                    statuses[row[0]] = row[1]
            pending = [i for i in pending if i not in statuses]
        elapsed = time.perf_counter() - t0
        failed = {i: s for i, s in statuses.items() if s != "success"}
        if failed:
            raise BenchError(f"{len(failed)} batch jobs did not succeed: "
                             f"{list(failed.items())[:5]}")
        rates.append(jobs / elapsed)
        seconds.append(elapsed)
        log(f"batch {rep}/{repeats}: {jobs} jobs in {elapsed:.3f}s "
            f"(submit {1000 * (t_submitted - t0):.0f} ms) = {jobs / elapsed:.1f} jobs/s")
    return {"jobs": jobs, "repeats": repeats, "jobs_per_s": round(median(rates), 2),
            "all_jobs_per_s": [round(r, 2) for r in rates],
            "all_seconds": [round(s, 4) for s in seconds]}


def bench_latency(client: luxi.Client, runs: int, warmup: int = 5, label: str = "") -> dict:
    op = delay_op()
    for _ in range(warmup):
        run_job(client, [op])
    times, submits = [], []
    for _ in range(runs):
        elapsed, status = run_job(client, [op], submits)
        if status != "success":
            raise BenchError(f"latency job ended {status}")
        times.append(elapsed)
    result = summary_ms(times)
    result["warmup"] = warmup
    result["submit_median_ms"] = round(1000 * median(submits), 3)
    log(f"latency{label}: median {result['median_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms "
        f"({runs} runs; SubmitJob alone {result['submit_median_ms']:.2f} ms)")
    return result


def bench_tags(client: luxi.Client, runs: int, label: str) -> dict:
    """A config-changing job: OpTagsSet on the cluster (gnt-cluster add-tags), new tag each run."""
    times = []
    for i in range(runs):
        op = opcodes.OpTagsSet(kind="cluster", tags=[f"bench-{label}-{i}"]).to_dict()
        elapsed, status = run_job(client, [op])
        if status != "success":
            raise BenchError(f"OpTagsSet job ended {status}")
        times.append(elapsed)
    result = summary_ms(times)
    log(f"config-changing job ({label}): median {result['median_ms']:.1f} ms ({runs} runs)")
    return result


# ---------------------------------------------------------------- the CLI

def bench_cli(node: dict, runs: int, goal_ms: float) -> dict:
    env = node_env(node)
    # measure what an installed genet costs: with its bytecode cache written, even when the
    # caller (e.g. a sandbox) sets PYTHONDONTWRITEBYTECODE
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    bindir = node["env"]["PATH"].split(":", 1)[0]
    exe = shutil.which("gnt-debug", path=node["env"]["PATH"])
    if exe is None or os.path.dirname(exe) != bindir:
        raise BenchError(f"gnt-debug resolves to {exe}, not to genet's in {bindir}")
    argv = [exe, "delay", "0"]
    for _ in range(2):   # warm the page cache and __pycache__
        run_checked(argv, env)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=60)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise BenchError(f"gnt-debug delay 0 failed (exit {proc.returncode}):\n"
                             f"{proc.stdout}{proc.stderr}")
        times.append(elapsed)
    result = summary_ms(times)
    result["command"] = argv
    # interpreter floor: what any python command costs on this machine
    floor = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
        floor.append(time.perf_counter() - t0)
    result["python_startup_ms"] = round(1000 * median(floor), 2)
    log(f"cli: median {result['median_ms']:.1f} ms ({runs} runs; bare python "
        f"{result['python_startup_ms']:.1f} ms)")
    if result["median_ms"] > goal_ms:
        result["importtime"] = importtime(argv, env)
    return result


IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S.*)$")


def importtime(argv: list[str], env: dict) -> dict:
    """Top 10 imports of the command by cumulative and by self time (python -X importtime)."""
    with open(argv[0]) as handle:
        shebang = handle.readline()
    python = shebang[2:].strip().split()[0] if shebang.startswith("#!") else sys.executable
    proc = subprocess.run([python, "-X", "importtime", *argv], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=60)
    rows = []
    for line in proc.stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            rows.append({"module": m.group(4).strip(), "self_ms": int(m.group(1)) / 1000,
                         "cumulative_ms": int(m.group(2)) / 1000,
                         "depth": (len(m.group(3)) - 1) // 2})
    top_level = [r for r in rows if r["depth"] == 0]
    return {"total_ms": round(sum(r["cumulative_ms"] for r in top_level), 1),
            "top_cumulative": sorted(rows, key=lambda r: -r["cumulative_ms"])[:10],
            "top_self": sorted(rows, key=lambda r: -r["self_ms"])[:10]}


# ---------------------------------------------------------------- the big config

def config_path(node: dict) -> Path:
    return Path(node["root"]) / "var/lib/genet/config.data"


def start_daemons(cluster: dict) -> None:
    """genet-daemon start on the master, inside its namespace (noded binds its address)."""
    master = next(n for n in cluster["nodes"] if n["name"] == cluster["master"])
    run_checked([sys.executable, str(DEV_CLUSTER), "exec", "--dir", cluster["dir"],
                 master["name"], "--", "genet-daemon", "start"], timeout=300)
    sock = Path(master["root"]) / "var/run/genet/socket/master.sock"
    if not luxi.wait_for_socket(sock, timeout=120):
        raise BenchError("masterd does not answer after genet-daemon start")


def restart_daemons(cluster: dict) -> float:
    """Stop and start the master's daemons with the config as it is; returns seconds."""
    master = next(n for n in cluster["nodes"] if n["name"] == cluster["master"])
    t0 = time.perf_counter()
    run_checked(["genet-daemon", "stop"], node_env(master))
    start_daemons(cluster)
    return time.perf_counter() - t0


def grow_config(cluster: dict, count: int) -> dict:
    """Stop node1's daemons, add ``count`` instances to its config, copy it to every master
    candidate, start node1's daemons again. Returns timings and sizes."""
    nodes = {n["name"]: n for n in cluster["nodes"]}
    master = nodes[cluster["master"]]
    env = node_env(master)
    t0 = time.perf_counter()
    run_checked(["genet-daemon", "stop"], env)
    t_stopped = time.perf_counter()

    path = config_path(master)
    data = json.loads(config.dumps(config.load(path)))        # the snapshot with its journal applied
    ts = time.time()
    for i in range(count):
        name = f"bench-inst{i:05d}.example.com"
        data["instances"][name] = {
            "name": name, "uuid": str(uuid.uuid4()), "primary_node": master["name"],
            "secondary_nodes": [], "disk_template": "diskless", "admin_state": "down",
            "beparams": {}, "hvparams": {}, "disks": [], "nics": [], "tags": [],
            "serial_no": 1, "ctime": ts, "mtime": ts}
    data["serial_no"] += 1
    content = config.dumps(data)        # the encoding genet writes
    ConfigFile(path).replace(content)
    copied = []
    for name, node in data["nodes"].items():
        if name != master["name"] and node.get("master_candidate") and name in nodes:
            ConfigFile(config_path(nodes[name])).replace(content)
            copied.append(name)
    t_written = time.perf_counter()

    start_daemons(cluster)
    t_started = time.perf_counter()
    sock = Path(master["root"]) / "var/run/genet/socket/master.sock"
    serial = luxi.Client(sock).call("QueryConfigValues", ["serial_no"])[0]
    if serial != data["serial_no"]:
        raise BenchError(f"masterd reports config serial {serial}, wrote {data['serial_no']}")
    result = {"instances": count, "config_bytes": len(content), "serial_no": serial,
              "copied_to": copied,
              "daemon_stop_ms": round(1000 * (t_stopped - t0), 1),
              "config_write_ms": round(1000 * (t_written - t_stopped), 1),
              "daemon_start_ms": round(1000 * (t_started - t_written), 1)}
    log(f"config grown to {count} instances ({len(content) / 1e6:.1f} MB), copied to "
        f"{', '.join(copied) or 'no other node'}; daemons restarted in "
        f"{result['daemon_start_ms']:.0f} ms")
    return result


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

    def add(figure, value, unit, key=None, target_text="-", ganeti="-"):
        row = {"figure": figure, "measured": value, "unit": unit,
               "measured_text": f"{value:.{1 if unit != 'x' else 2}f} {unit}".rstrip(),
               "target": target_text, "ganeti": ganeti}
        if key:
            target, goal, gnt, sense = TARGETS[key]
            sign = ">=" if sense == "higher" else "<="
            row["target"] = f"{sign} {target:g}" + (f" (goal {goal:g})" if goal else "")
            row["ganeti"] = f"{gnt:g} {unit}" if gnt is not None else "-"
            row["status"] = verdict(key, value)
        rows.append(row)

    if "batch" in results:
        b = results["batch"]
        add(f"batch: {b['jobs']} x OpTestDelay(0), median of {b['repeats']}", b["jobs_per_s"],
            "jobs/s", "batch_jobs_per_s")
    if "latency" in results:
        lat = results["latency"]
        add("latency: submit -> final, median", lat["median_ms"], "ms", "latency_median_ms")
        add("latency: p90", lat["p90_ms"], "ms")
    if "cli" in results:
        add("cli: gnt-debug delay 0, median", results["cli"]["median_ms"], "ms",
            "cli_median_ms")
    if "bigcfg" in results:
        big = results["bigcfg"]
        add("latency, small config (restarted), median", big["latency_empty"]["median_ms"],
            "ms")
        add(f"latency at {big['instances']} instances (restarted), median",
            big["latency"]["median_ms"], "ms")
        add("latency ratio big/empty", big["latency_ratio"], "x", "bigcfg_latency_ratio")
        add("config-changing job (OpTagsSet), empty", big["tags_empty"]["median_ms"], "ms")
        add(f"config-changing job at {big['instances']} instances",
            big["tags_big"]["median_ms"], "ms")
    return rows


def print_table(rows: list[dict]) -> None:
    headers = ("figure", "measured", "target", "Ganeti", "status")
    if not rows:
        print("(no results)")
        return
    cells = [(r["figure"], r["measured_text"], r["target"], r["ganeti"], r.get("status", ""))
             for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--subnet", help="dev cluster subnet inside 203.0.113.0/24 "
                                         "(default: the free one dev-cluster picks)")
    parser.add_argument("--keep", action="store_true",
                        help="debugging: do not stop the cluster at the end")
    parser.add_argument("--batch-jobs", type=int, default=200)
    parser.add_argument("--batch-repeats", type=int, default=3)
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--cli-runs", type=int, default=20)
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--tag-runs", type=int, default=5,
                        help="config-changing jobs timed at each config size")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["batch", "latency", "cli", "bigcfg"],
                        help="leave out a benchmark (repeatable)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (dev-cluster makes network namespaces)", file=sys.stderr)
        return 1

    # make SIGTERM unwind through the finally below, like Ctrl-C does
    def on_sigterm(signum, frame):
        signal.signal(signum, signal.SIG_IGN)   # a second one must not cut the cleanup short
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)

    directory = Path(tempfile.mkdtemp(prefix="genet-bench-", dir="/tmp"))
    results: dict = {}
    doc = {"benchmark": "genet bench/jobs.py", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "host": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "kernel": platform.release()},
           "params": {k: v for k, v in vars(args).items() if k not in ("out",)},
           "cluster_dir": str(directory), "results": results}
    failure = None
    try:
        cluster = start_cluster(directory, args.subnet)
        master = next(n for n in cluster["nodes"] if n["name"] == cluster["master"])
        sock = Path(master["root"]) / "var/run/genet/socket/master.sock"
        doc["subnet"] = cluster["subnet"]
        if not luxi.wait_for_socket(sock, timeout=30):
            raise BenchError(f"no master daemon on {sock}")
        client = luxi.Client(sock, timeout=120)

        if "latency" not in args.skip:
            results["latency"] = bench_latency(client, args.latency_runs, label=" (fresh cluster)")
        if "batch" not in args.skip:
            results["batch"] = bench_batch(client, args.batch_jobs, args.batch_repeats)
        if "cli" not in args.skip:
            results["cli"] = bench_cli(master, args.cli_runs, TARGETS["cli_median_ms"][1])
        if "bigcfg" not in args.skip:
            # baseline in the same state as the big measurement: daemons just restarted
            client.close()
            restart_s = restart_daemons(cluster)
            log(f"daemons restarted with the small config in {1000 * restart_s:.0f} ms")
            client = luxi.Client(sock, timeout=120)
            latency_empty = bench_latency(client, args.latency_runs,
                                          label=" (small config, restarted)")
            tags_empty = bench_tags(client, args.tag_runs, "empty")
            client.close()
            grown = grow_config(cluster, args.instances)
            client = luxi.Client(sock, timeout=120)
            latency = bench_latency(client, args.latency_runs,
                                    label=f" ({args.instances} instances, restarted)")
            tags_big = bench_tags(client, args.tag_runs, "big")
            results["bigcfg"] = {
                **grown, "restart_small_ms": round(1000 * restart_s, 1),
                "latency_empty": latency_empty, "latency": latency,
                "tags_empty": tags_empty, "tags_big": tags_big,
                "latency_ratio": round(latency["median_ms"] / latency_empty["median_ms"], 3),
                "tags_ratio": round(tags_big["median_ms"] / tags_empty["median_ms"], 3)}
        client.close()
    except (BenchError, errors.GenericError, subprocess.SubprocessError, OSError) as err:
        failure = f"{type(err).__name__}: {err}"
        log(f"FAILED: {failure}")
    except KeyboardInterrupt:
        failure = "interrupted"
        log("interrupted")
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)   # let the cluster be stopped
        if args.keep:
            log(f"--keep: cluster left running in {directory}; "
                f"stop it with {DEV_CLUSTER} stop --dir {directory}")
        else:
            stop_cluster(directory)
            if directory.exists():
                log(f"{directory} still exists after dev-cluster stop")

    rows = table_rows(results)
    doc["table"] = rows
    doc["error"] = failure
    doc["ok"] = failure is None and all(r.get("status") != "MISSED" for r in rows)
    print()
    print_table(rows)
    cli = results.get("cli", {})
    if "importtime" in cli:
        it = cli["importtime"]
        print(f"\ngnt-debug imports: {it['total_ms']:.1f} ms in total (python -X importtime); "
              "top 10 by cumulative time:")
        for r in it["top_cumulative"]:
            print(f"  {r['cumulative_ms']:7.1f} ms  (self {r['self_ms']:5.1f})  {r['module']}")
    if failure:
        print(f"\nbenchmark failed: {failure}")
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        log(f"results written to {args.out}")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
