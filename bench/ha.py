#!/usr/bin/env python3
"""High availability on real dev clusters (issue 16): how long from a node's death to the
service back elsewhere, and where that time goes.

    .venv/bin/python bench/ha.py [--rounds 3] [--only master|instance] [--keep] [--out FILE]

1. master: a 3-node cluster (fake hypervisor) with `gnt-cluster modify --auto-master-failover
   yes`. Each round kills the master node (`dev-cluster kill-node`) and probes the two others in
   parallel, each every 0.2 s, with `gnt-debug delay --submit 0` (genet's binary run from the
   root namespace with the node's environment: the luxi socket is a file), until one accepts.
   Figures in seconds from the kill: the election won (the winner's genet-noded log, "won the
   election"), its masterd listening ("serving on" in its genet-masterd log), "is master" (noded
   log, logged once the RAPI started too), the job's own "Received" time (`gnt-job info`), and the
   probe that got the job ID back. The killed node is then restarted and must follow the new master
   (config, its etcd member back) before the next round kills the new master; the issue asks for a
   new master accepting jobs within 15 s.
2. instance: a fresh 4-node cluster (kvm, the test guest under TCG) per round, a mirror instance
   `-B ha=true` on node2:node3, its guest booted and its mirror in sync (verify-disks, then two
   heartbeats so the master knows it). node2 is killed; figures in seconds from the kill: the
   master's genet-masterd log ("recovery: node2 is dead", "is fenced", "set offline", "restarted
   on"), the recovery jobs' received/start/end times (fence, set offline, failover), on node3 the
   storage daemon's start as primary and QEMU's start (genet-noded log), then when `gnt-instance
   list -o pnode,status` shows node3/running and when the guest's boot marker
   (testguest.READY_MARKER) is in node3's serial log: the later of these two is "running
   elsewhere". The lists overlap (a new one every 0.5 s): one started while node2 is dead but not
   yet offline waits out its RPC timeout.

Each cluster lives in a fresh /tmp/genet-bench-ha-* directory and is stopped at the end, also
after an error, Ctrl-C or SIGTERM (`--keep` leaves the last cluster of each part running; stop it with
`tools/dev-cluster stop --dir DIR`). Wall-clock times in the daemons' logs are compared with this
process's clock: same machine, same clock.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOL = HERE.parent / "tools" / "dev-cluster"
sys.path.insert(0, str(HERE.parent / "tools"))         # genet_dev (the test guest)

MASTER_NODES = ("node1", "node2", "node3")
PROBE_INTERVAL = 0.2
MASTER_TARGET_S = 15.0
INSTANCE = "ha1"
GUEST_IP = "10.199.0.71"


class BenchError(Exception):
    pass


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def tool(*args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, input=input,
                          timeout=timeout)


def wait(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def log_time(stamp: str) -> float:
    """A daemon log's "2026-12-07 19:13:31,039" or gnt-job's "2026-12-07 19:13:33.222933" (local
    time) as a Unix timestamp."""
    stamp = stamp.strip().replace(",", ".")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in stamp else "%Y-%m-%d %H:%M:%S"
    return datetime.datetime.strptime(stamp, fmt).timestamp()


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (.*)$")


def first_log_line(path: Path, text: str, after: float) -> float | None:
    """When ``text`` was first logged in ``path`` at or after ``after`` (None: not yet)."""
    try:
        content = path.read_text(errors="replace")
    except OSError:
        return None
    for line in content.splitlines():
        found = LOG_LINE.match(line)
        if found and text in found.group(2):
            when = log_time(found.group(1))
            if when >= after - 0.001:
                return when
    return None


def etcd_leader_elected(path: Path, after: float) -> float | None:
    """When the etcd member logging to ``path`` (JSON lines, UTC) first saw a leader elected after
    ``after`` (None: the leader did not change)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if "elected leader" not in line:
            continue
        try:
            stamp = json.loads(line)["ts"]
        except (ValueError, KeyError):
            continue
        when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        if when >= after:
            return when
    return None


class Cluster:
    def __init__(self, directory: Path):
        self.dir = directory
        self.doc = json.loads((directory / "cluster.json").read_text())

    def node(self, name: str) -> dict:
        return next(n for n in self.doc["nodes"] if n["name"] == name)

    def root(self, node: str) -> Path:
        return self.dir / node / "root"

    def log_file(self, node: str, daemon: str) -> Path:
        return self.root(node) / f"var/log/genet/{daemon}.log"

    def run(self, node: str, *cmd: str, check: bool = True, input: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        proc = tool("exec", "--dir", str(self.dir), node, "--", *cmd, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} on {node} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def devtool(self, command: str, node: str) -> None:
        proc = tool(command, "--dir", str(self.dir), node)
        if proc.returncode != 0:
            raise BenchError(f"dev-cluster {command} {node} failed:\n{proc.stdout}\n{proc.stderr}")

    def node_env(self, node: str) -> dict[str, str]:
        """The caller's environment without GENET_*, plus the node's (as dev-cluster exec does)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENET_")}
        env.update(self.node(node)["env"])
        return env

    def local(self, node: str, command: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A gnt-* command of ``node`` run from the root namespace with the node's environment
        (genet's binary; the luxi socket is a file): a cheap probe, no dev-cluster exec around it."""
        env = self.node_env(node)
        exe = shutil.which(command, path=env["PATH"])
        try:
            return subprocess.run([exe, *args], capture_output=True, text=True, env=env,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            return subprocess.CompletedProcess(err.cmd, 124, "", f"timed out after {timeout} s")

    def gnt_debug_submit(self, node: str) -> tuple[bool, int | None]:
        """`gnt-debug delay --submit 0` on ``node``: (accepted, job ID)."""
        proc = self.local(node, "gnt-debug", "delay", "--submit", "0", timeout=30)
        found = re.search(r"JobID: (\d+)", proc.stdout)
        return proc.returncode == 0 and found is not None, int(found.group(1)) if found else None

    def master_on(self, nodes) -> str | None:
        for node in nodes:
            if self.gnt_debug_submit(node)[0]:
                return node
        return None

    def stored_master(self, node: str) -> str | None:
        from genet import config
        try:
            return config.load(self.root(node) / "var/lib/genet/config.data")["cluster"]["master_node"]
        except Exception:       # being written, or not there yet
            return None

    def pid_alive(self, node: str, daemon: str, word: str) -> bool:
        try:
            pid = int((self.root(node) / f"var/run/genet/{daemon}.pid").read_text().split()[0])
            return word in Path(f"/proc/{pid}/cmdline").read_text()
        except (OSError, ValueError, IndexError):
            return False

    def job_times(self, node: str, job_id: int) -> dict:
        """Received / Processing start / Processing end of a job, and its execution log lines."""
        text = self.run(node, "gnt-job", "info", str(job_id)).stdout
        out: dict = {}
        for key, label in (("received", "Received"), ("start", "Processing start"), ("end", "Processing end")):
            found = re.search(rf"^  {label}:\s+(\S+ \S+)", text, re.M)
            if found:
                out[key] = log_time(found.group(1))
        out["log"] = [(log_time(when), msg.strip()) for when, msg in
                      re.findall(r"- Time: (\S+ \S+), Type: \w+, Message: (.*)", text)]
        return out


def start_cluster(directory: Path, *args: str) -> Cluster:
    t0 = time.monotonic()
    proc = tool("start", "--dir", str(directory), *args, timeout=600)
    if proc.returncode != 0:
        raise BenchError(f"dev-cluster start failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    log(f"cluster {directory} up in {time.monotonic() - t0:.1f} s")
    return Cluster(directory)


def stop_cluster(directory: Path) -> None:
    proc = tool("stop", "--dir", str(directory), timeout=300)
    if proc.returncode != 0:
        log(f"dev-cluster stop --dir {directory} failed:\n{proc.stderr[-3000:]}")
    shutil.rmtree(directory.parent, ignore_errors=True)


def since(t0: float, when: float | None) -> float | None:
    return None if when is None else round(when - t0, 2)


# ------------------------------------------------------------------ 1. master death

def probe_until_accepted(c: Cluster, nodes: list[str], timeout: float = 90) -> dict:
    """Probe each node in its own thread every PROBE_INTERVAL until one accepts a job."""
    found: dict = {}
    done = threading.Event()
    lock = threading.Lock()
    counts = {n: 0 for n in nodes}

    def loop(node: str) -> None:
        while not done.is_set():
            started = time.time()
            ok, job = c.gnt_debug_submit(node)
            ended = time.time()
            counts[node] += 1
            if ok:
                with lock:
                    if not found:
                        found.update(node=node, job=job, probe_start=started, probe_end=ended)
                done.set()
                return
            time.sleep(max(0.0, PROBE_INTERVAL - (ended - started)))

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    if not done.wait(timeout):
        done.set()
        raise BenchError(f"no node of {nodes} accepted a job within {timeout:.0f} s")
    for t in threads:
        t.join(35)
    found["probes"] = counts
    return found


def master_round(c: Cluster, master: str) -> dict:
    others = [n for n in MASTER_NODES if n != master]
    before = time.time()
    c.devtool("kill-node", master)
    killed = time.time()
    got = probe_until_accepted(c, others)
    new = got["node"]
    job = c.job_times(new, got["job"])
    noded, masterd = c.log_file(new, "genet-noded"), c.log_file(new, "genet-masterd")
    try:        # logged once the RAPI started too, which may be after the first job
        wait(lambda: first_log_line(noded, "is master", before), 10, "the \"is master\" line")
    except BenchError:
        pass
    won = first_log_line(noded, "won the election", before)
    figures = {
        "killed": master, "new_master": new,
        "kill_cmd_s": round(killed - before, 2),
        "election_won_s": since(killed, won),
        # the killed node led the etcd cluster: the survivors elect another leader first, and etcd
        # then renews every lease for a full TTL (genet.ha.timing), so the election waits longer
        "etcd_leader_elected_s": since(killed, etcd_leader_elected(c.log_file(new, "genet-etcd"), before)),
        "masterd_serving_s": since(killed, first_log_line(masterd, "master daemon of", before)),
        "is_master_s": since(killed, first_log_line(noded, "is master", before)),
        "job_received_s": since(killed, job.get("received")),
        "accepted_s": since(killed, got["probe_end"]),
        "probe_s": round(got["probe_end"] - got["probe_start"], 2),
        "probes": got["probes"],
    }
    # the take-over (genet.ha.node_agent.NodeLocal.take_over): won → masterd serving
    if won is not None and figures["masterd_serving_s"] is not None:
        figures["takeover_s"] = round(figures["masterd_serving_s"] - figures["election_won_s"], 2)
    return figures


def restore_master_round(c: Cluster, killed: str, new: str) -> None:
    restarted = time.time()
    c.devtool("restart", killed)
    wait(lambda: c.stored_master(killed) == new, 60, f"{killed} to take {new}'s config")
    wait(lambda: first_log_line(c.log_file(killed, "genet-noded"), f"sees master {new}", restarted), 60,
         f"{killed}'s elector to see {new} on the store")
    wait(lambda: c.pid_alive(killed, "genet-etcd", "etcd"), 60, f"{killed}'s etcd member")
    time.sleep(6)       # the member caught up, renewals steady: the next kill starts from the normal state
    running = [n for n in MASTER_NODES if c.pid_alive(n, "genet-masterd", "masterd")]
    if running != [new]:
        raise BenchError(f"after the restart of {killed}, masterd runs on {running}, expected only {new}")


def bench_master(base: Path, rounds: int, keep: bool, runs: list) -> None:
    directory = base / "master" / "cluster"
    directory.parent.mkdir(parents=True)
    try:
        c = start_cluster(directory, "--nodes", "3")
        out = c.run("node1", "gnt-cluster", "modify", "--auto-master-failover", "yes")
        log(" ".join((out.stdout + out.stderr).split())[:200])
        master = wait(lambda: c.master_on(MASTER_NODES), 60, "a master accepting jobs")
        time.sleep(5)
        for index in range(rounds):
            figures = master_round(c, master)
            runs.append(figures)
            log(f"master round {index + 1}: {figures}")
            restore_master_round(c, master, figures["new_master"])
            master = figures["new_master"]
    finally:
        if keep:
            log(f"--keep: the master cluster is left running: {TOOL} stop --dir {directory}")
        else:
            stop_cluster(directory)


# ------------------------------------------------------------------ 2. node death, HA instance

def hvparams() -> str:
    from genet_dev import testguest
    guest = testguest.ensure()
    # as test/integration/test_instances_mirror.py's hvparams, the guest's own address
    return (f"kernel_path={guest['kernel']},initrd_path={guest['initrd']},accel=tcg,serial_console=true,"
            "migration_downtime=10000,"
            f"kernel_args=console=ttyS0 quiet genet.ip={GUEST_IP}/24 genet.gw=10.199.0.1")


def serial_log(c: Cluster, node: str) -> Path:
    return c.root(node) / "var/run/genet/kvm" / INSTANCE / "serial.log"


def ready_marker(c: Cluster, node: str) -> str | None:
    """The guest's boot marker line in ``node``'s serial log (None: not booted there)."""
    from genet_dev import testguest
    try:
        text = serial_log(c, node).read_text(errors="replace")
    except OSError:
        return None
    found = re.search(rf"{re.escape(testguest.READY_MARKER)}[^\n]*", text)
    return found.group(0) if found else None


def instance_round(directory: Path) -> dict:
    c = start_cluster(directory, "--nodes", "4", "--hypervisor", "kvm")
    t0 = time.time()
    c.run("node1", "gnt-instance", "add", "-t", "mirror", "-n", "node2:node3", "--disk", "0:size=32M",
          "--net", "0:link=gnt-br0", "-B", "memory=256M,ha=true", "-H", hvparams(), INSTANCE)
    wait(lambda: ready_marker(c, "node2"), 120, f"{INSTANCE} to boot on node2")
    wait(lambda: c.run("node1", "gnt-cluster", "verify-disks", check=False).returncode == 0, 60,
         "the mirror to be in sync")
    time.sleep(4.5)     # two heartbeats (2 s): the master knows the secondary's copy is in sync
    log(f"{INSTANCE} booted on node2, in sync, {time.time() - t0:.1f} s after the add")

    before = time.time()
    c.devtool("kill-node", "node2")
    killed = time.time()
    seen: dict = {}
    polls: list[tuple[float, float, str]] = []     # (start, end, what the list said)

    def list_once() -> None:
        started = time.time()
        proc = c.local("node1", "gnt-instance", "list", "--no-headers", "-o", "pnode,status", INSTANCE)
        polls.append((started, time.time(), " ".join(proc.stdout.split()) or proc.stderr.strip()[-80:]))

    def booted() -> bool:
        line = ready_marker(c, "node3")
        if line and "ready" not in seen:
            seen["ready"] = time.time()
            seen["ready_line"] = line
        return bool(line)

    # a list started while node2 is dead but not yet offline waits out its RPC timeout: a new
    # one starts every 0.5 s all the same, so the first that can show node3 running does
    def listed() -> bool:
        if threading.active_count() < 20:
            threading.Thread(target=list_once, daemon=True).start()
        return any(state == "node3 running" for _, _, state in list(polls))

    wait(lambda: all([booted(), listed()]), 180, f"{INSTANCE} running on node3 (list and boot marker)", interval=0.5)
    time.sleep(0.5)
    shown = [p for p in polls if p[2] == "node3 running"]
    seen["listed"] = min(end for _, end, _ in shown)
    seen["listed_query_start"] = min(start for start, end, _ in shown if end == seen["listed"])
    transitions = []
    for start, end, state in sorted(polls):
        if not transitions or transitions[-1][2] != state:
            transitions.append((round(start - killed, 2), round(end - killed, 2), state))

    masterd = c.log_file("node1", "genet-masterd")
    figures: dict = {
        "kill_cmd_s": round(killed - before, 2),
        "dead_s": since(killed, first_log_line(masterd, "recovery: node2 is dead", before)),
        "fenced_s": since(killed, first_log_line(masterd, "recovery: node2 is fenced", before)),
        "offline_s": since(killed, first_log_line(masterd, "recovery: node2 set offline", before)),
        "restarted_s": since(killed, first_log_line(masterd, f"recovery: {INSTANCE} restarted on node3", before)),
    }
    jobs = c.run("node1", "gnt-job", "list", "--no-headers", "--separator=|", "-o", "id,summary").stdout
    for line in jobs.splitlines():
        job_id, summary = line.strip().split("|", 1)
        key = ("fence" if summary.startswith("OOB_COMMAND") else
               "offline" if summary.startswith("NODE_SET_PARAMS(node2)") else
               "failover" if summary.startswith(f"INSTANCE_FAILOVER({INSTANCE})") else None)
        if key is None:
            continue
        times = c.job_times("node1", int(job_id))
        if times.get("received", 0) < before:
            continue
        for part in ("received", "start", "end"):
            figures[f"{key}_job_{part}_s"] = since(killed, times.get(part))
        figures[f"{key}_job_log"] = [(since(killed, when), msg) for when, msg in times["log"]]
    noded3 = c.log_file("node3", "genet-noded")
    figures["primary_daemon_s"] = since(killed, first_log_line(noded3, "storage daemon started as primary", before))
    figures["qemu_start_s"] = since(killed, first_log_line(noded3, f"instance {INSTANCE}: starting", before))
    figures["listed_s"] = since(killed, seen["listed"])
    figures["listed_query_start_s"] = since(killed, seen["listed_query_start"])
    figures["ready_s"] = since(killed, seen["ready"])
    uptime = re.search(r"uptime=([\d.]+)", seen["ready_line"])
    figures["guest_boot_s"] = float(uptime.group(1)) if uptime else None
    figures["running_elsewhere_s"] = round(max(seen["listed"], seen["ready"]) - killed, 2)
    figures["list_transitions"] = transitions
    return figures


def bench_instance(base: Path, rounds: int, keep: bool, runs: list) -> None:
    for index in range(rounds):
        directory = base / f"instance-{index + 1}" / "cluster"
        directory.parent.mkdir(parents=True)
        last = index == rounds - 1
        try:
            figures = instance_round(directory)
        finally:
            if keep and last:
                log(f"--keep: the instance cluster is left running: {TOOL} stop --dir {directory}")
            else:
                stop_cluster(directory)
        runs.append(figures)
        log(f"instance round {index + 1}: " + json.dumps({k: v for k, v in figures.items()
                                                         if not isinstance(v, list)}))


# ------------------------------------------------------------------ report

MASTER_ROWS = [
    ("etcd_leader_elected_s", "kill → new etcd leader (killed node led etcd)"),
    ("election_won_s", "kill → election won (winner's noded log)"),
    ("masterd_serving_s", "kill → masterd serving"),
    ("is_master_s", "kill → \"is master\" (RAPI started too)"),
    ("job_received_s", "kill → first job received (gnt-job info)"),
    ("accepted_s", "kill → gnt-debug delay --submit 0 accepted"),
]
INSTANCE_ROWS = [
    ("dead_s", "kill → \"node2 is dead\""),
    ("fence_job_received_s", "kill → fence job received"),
    ("fenced_s", "kill → \"is fenced\" (OOB power-off + status)"),
    ("offline_job_received_s", "kill → set-offline job received"),
    ("offline_s", "kill → \"set offline\""),
    ("failover_job_start_s", "kill → failover job started"),
    ("primary_daemon_s", "kill → node3 storage daemon primary"),
    ("qemu_start_s", "kill → QEMU started on node3"),
    ("restarted_s", "kill → \"restarted on node3\""),
    ("listed_s", "kill → list shows node3 running"),
    ("ready_s", "kill → guest boot marker on node3"),
    ("guest_boot_s", "guest's own uptime at the marker"),
    ("running_elsewhere_s", "kill → running elsewhere (both)"),
]


# where the time goes: (figure, label, to, from) with from None = the kill; per round, then summarised
MASTER_PHASES = [
    ("p_lease_s", "lease runs out, a candidate wins (+ etcd's own election)", "election_won_s", None),
    ("p_takeover_s", "take-over: fence candidates, newest config/queue, masterd up", "masterd_serving_s",
     "election_won_s"),
    ("p_first_job_s", "masterd serving → first job received (probe interval)", "job_received_s", "masterd_serving_s"),
]
INSTANCE_PHASES = [
    ("p_detect_s", "detection: no heartbeat answer for node_dead (10 s)", "dead_s", None),
    ("p_to_fence_s", "dead → fence job submitted", "fence_job_received_s", "dead_s"),
    ("p_fence_s", "fence job: OOB power-off + power-status", "fenced_s", "fence_job_received_s"),
    ("p_to_offline_s", "fenced → set-offline job submitted", "offline_job_received_s", "fenced_s"),
    ("p_offline_s", "set-offline job", "offline_s", "offline_job_received_s"),
    ("p_failover_s", "failover job (mirror primary, QEMU start)", "restarted_s", "offline_s"),
    ("p_boot_s", "QEMU started → guest's boot marker", "ready_s", "qemu_start_s"),
]


def add_phases(runs: list[dict], phases) -> None:
    for run in runs:
        for key, _, to, frm in phases:
            if isinstance(run.get(to), (int, float)) and (frm is None or isinstance(run.get(frm), (int, float))):
                run[key] = round(run[to] - (run[frm] if frm else 0.0), 2)


def summarise(runs: list[dict], rows) -> list[dict]:
    table = []
    for key, label, *_ in rows:
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if not values:
            continue
        table.append({"figure": key, "label": label, "median": round(statistics.median(values), 2),
                      "min": round(min(values), 2), "max": round(max(values), 2), "n": len(values)})
    return table


def print_table(title: str, table: list[dict]) -> None:
    print(f"\n{title}")
    print(f"  {'figure':<62} {'median':>7} {'min':>7} {'max':>7}")
    for row in table:
        print(f"  {row['label']:<62} {row['median']:>7.2f} {row['min']:>7.2f} {row['max']:>7.2f}")


def git_state() -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True, text=True).stdout
    return {"commit": git("rev-parse", "HEAD").strip(),
            "dirty": [line[3:] for line in git("status", "--porcelain", "--", "lib", "storage", "daemons",
                                                "hypervisor", "tools").splitlines()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["master", "instance"], help="run one of the two benchmarks")
    parser.add_argument("--keep", action="store_true", help="leave the last cluster of each benchmark running")
    parser.add_argument("--out", help="write everything (every round) as JSON to this file")
    opts = parser.parse_args()

    def on_signal(signum, frame):
        signal.signal(signum, signal.SIG_IGN)       # a second one must not cut the cleanup short
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    base = Path(tempfile.mkdtemp(prefix="genet-bench-ha-", dir="/tmp"))
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "rounds": opts.rounds,
                     "git": git_state(), "load_before": os.getloadavg()}
    status = 0
    try:
        if opts.only in (None, "master"):
            results["master"] = {"runs": []}
            bench_master(base, opts.rounds, opts.keep, results["master"]["runs"])
        if opts.only in (None, "instance"):
            results["instance"] = {"runs": []}
            bench_instance(base, opts.rounds, opts.keep, results["instance"]["runs"])
    except (BenchError, KeyboardInterrupt) as err:
        results["error"] = str(err) or type(err).__name__
        log(f"bench/ha.py: {results['error']}")
        status = 1
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        if not opts.keep:
            shutil.rmtree(base, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    if results.get("master", {}).get("runs"):
        add_phases(results["master"]["runs"], MASTER_PHASES)
        results["master"]["table"] = summarise(results["master"]["runs"], MASTER_ROWS)
        results["master"]["phases"] = summarise(results["master"]["runs"], MASTER_PHASES)
        results["master"]["within_15s"] = all(r["accepted_s"] <= MASTER_TARGET_S for r in results["master"]["runs"])
    if results.get("instance", {}).get("runs"):
        add_phases(results["instance"]["runs"], INSTANCE_PHASES)
        results["instance"]["table"] = summarise(results["instance"]["runs"], INSTANCE_ROWS)
        results["instance"]["phases"] = summarise(results["instance"]["runs"], INSTANCE_PHASES)
    if "master" in results and results["master"].get("table"):
        print_table(f"master death → a new master accepts jobs ({len(results['master']['runs'])} rounds, s;"
                    f" target ≤ {MASTER_TARGET_S:.0f} s: {'met' if results['master']['within_15s'] else 'MISSED'})",
                    results["master"]["table"])
        print_table("  where it goes (per round, s)", results["master"]["phases"])
    if "instance" in results and results["instance"].get("table"):
        print_table(f"node death → HA instance running elsewhere ({len(results['instance']['runs'])} rounds, s)",
                    results["instance"]["table"])
        print_table("  where it goes (per round, s)", results["instance"]["phases"])
    print(f"\nload average before {results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f}")
    if opts.out:
        Path(opts.out).write_text(json.dumps(results, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
