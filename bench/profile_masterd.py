#!/usr/bin/env python3
"""Profile genet-masterd (all its threads, with cProfile) while a workload runs.

Meant for a dev cluster kept by ``bench/jobs.py --keep`` (or any dev cluster):

    /tmp/venvtest/bin/python bench/profile_masterd.py --dir /tmp/genet-bench-XXXX \\
        --workload latency --count 200 [--clock cpu|wall] [--top 30] [--out FILE.pstats]

It stops node1's (the master's) genet-masterd, starts it again under this script's
``--serve`` mode inside node1's network namespace (a profiler per thread: the luxi
handlers, the job workers, the committer and the RPC pool all run in threads), runs the
workload from this process over luxi, stops the profiled daemon with SIGTERM (it dumps
its merged statistics on the way out) and starts the normal masterd again.

Workloads: ``latency`` (one OpTestDelay(0) job at a time, as bench/jobs.py's latency),
``tags`` (one OpTagsSet on the cluster at a time: a config write), ``batch`` (COUNT jobs
in one SubmitManyJobs).

``--clock cpu`` (default) charges each function the CPU time of its thread
(time.thread_time): it shows where the daemon computes. ``--clock wall`` charges wall
time, so blocking (fsync, waiting for RPC replies, condition waits) shows too, summed
over threads.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV_CLUSTER = REPO / "tools" / "dev-cluster"


# ---------------------------------------------------------------- inside node1: the daemon

def serve(out: str, clock: str) -> None:
    """Run genet.daemons.masterd.main() with a cProfile profiler in every thread."""
    timer = time.thread_time if clock == "cpu" else time.perf_counter
    profiles: list[cProfile.Profile] = []
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

    os._exit = dump_and_exit   # masterd ends with os._exit(0) after the reactor stopped
    from genet.daemons import masterd
    main_prof.enable()
    masterd.main([])


# ---------------------------------------------------------------- outside: the driver

def node_env(node: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENET_")}
    env.update(node["env"])
    return env


def run_workload(sock: Path, workload: str, count: int) -> list[float]:
    from genet import luxi, opcodes
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from jobs import run_job, wait_final   # same client loop as the benchmark

    client = luxi.Client(sock, timeout=120)
    times = []
    if workload == "batch":
        op = opcodes.OpTestDelay(duration=0).to_dict()
        t0 = time.perf_counter()
        ids = [r[1] for r in client.call("SubmitManyJobs", [[op] for _ in range(count)])]
        for job_id in ids:
            wait_final(client, job_id, timeout=300)
        times.append(time.perf_counter() - t0)
    else:
        for i in range(count):
            if workload == "latency":
                op = opcodes.OpTestDelay(duration=0).to_dict()
            else:
                op = opcodes.OpTagsSet(kind="cluster", tags=[f"prof-{os.getpid()}-{i}"]).to_dict()
            elapsed, status = run_job(client, [op])
            if status != "success":
                raise SystemExit(f"job ended {status}")
            times.append(elapsed)
    client.close()
    return times


def drive(args: argparse.Namespace) -> int:
    from genet import daemon_util, luxi

    directory = Path(args.dir).resolve()
    cluster = json.loads((directory / "cluster.json").read_text())
    master = next(n for n in cluster["nodes"] if n["name"] == cluster["master"])
    sock = Path(master["root"]) / "var/run/genet/socket/master.sock"
    out = Path(args.out or f"/tmp/masterd-{args.workload}-{args.clock}.pstats").resolve()
    out.unlink(missing_ok=True)

    # stop only masterd (noded keeps serving); daemon_util works on $GENET_ROOT
    saved = dict(os.environ)
    os.environ.update(master["env"])
    try:
        daemon_util.stop("genet-masterd")
    finally:
        os.environ.clear()
        os.environ.update(saved)

    python = sys.executable
    child = subprocess.Popen(
        [python, str(DEV_CLUSTER), "exec", "--dir", str(directory), master["name"], "--",
         python, str(Path(__file__).resolve()), "--serve", "--out", str(out),
         "--clock", args.clock],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(directory / "profile-masterd.log", "ab"), start_new_session=True)
    try:
        if not luxi.wait_for_socket(sock, timeout=60):
            raise SystemExit(f"profiled masterd did not come up; see {directory}/profile-masterd.log")
        run_workload(sock, args.workload, args.warmup) if args.warmup else None
        times = run_workload(sock, args.workload, args.count)
    finally:
        child.send_signal(signal.SIGTERM)   # dev-cluster exec execs nsenter, which execs python
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
        subprocess.run([python, str(DEV_CLUSTER), "exec", "--dir", str(directory),
                        master["name"], "--", "genet-daemon", "start"], check=False,
                       stdin=subprocess.DEVNULL)
    ms = sorted(1000 * t for t in times)
    print(f"{args.workload}: {len(ms)} runs under the profiler, median {ms[len(ms) // 2]:.1f} ms "
          f"(profiling slows the daemon; compare only proportions)")
    if not out.exists():
        raise SystemExit(f"no profile written to {out}; see {directory}/profile-masterd.log")
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"profile: {out}  (python -m pstats {out})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help="the dev cluster directory")
    parser.add_argument("--workload", choices=["latency", "tags", "batch"], default="latency")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", help="pstats file (default /tmp/masterd-WORKLOAD-CLOCK.pstats)")
    args = parser.parse_args()
    if args.serve:
        serve(args.out, args.clock)
        return 0
    if not args.dir:
        parser.error("--dir is required")
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
