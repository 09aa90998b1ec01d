#!/usr/bin/env python3
"""Instance benchmarks of genet (issue 4): create, kvm start overhead, migration downtime.

Run it as root with the python of genet's venv (so genet and its gnt-* commands are found):

    /tmp/venvtest/bin/python bench/instances.py --out /tmp/bench-instances.json

It starts its own dev clusters in fresh temporary directories, one after the other, and
always stops them again (also on errors and Ctrl-C / SIGTERM). What it measures (see
bench/README.md):

1. add      on a 3-node cluster with the fake hypervisor: wall time of
            `gnt-instance add -t diskless --no-start NAME` (20 runs, distinct names):
            median, p90; interleaved with the same OpInstanceCreate submitted over luxi
            (submit -> final): median
2. start    on a 3-node cluster with the kvm hypervisor (TCG, the tiny test guest): one
            diskless instance without NICs, 256 MiB; (a) OpInstanceStartup submit -> final
            (status running), against (b) the QEMU argv of its runtime.json launched by
            hand in node1's namespace until QMP answers query-status "running";
            overhead = a - b, paired per round, median of 10
3. migrate  the same kind of instance booted to the guest's ready marker, migration_bandwidth
            =1000: 5 live migrations node1 <-> node2, downtime_ms and total_time_ms from the
            job result (QueryJobs opresult): medians; then one more instance with the default
            bandwidth, migrated once

Exit code: 0 when everything ran (whether or not targets were met; see "ok" in the JSON),
1 when the benchmark itself failed.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))     # genet_dev (the test guest)
from jobs import (DEV_CLUSTER, BenchError, importtime, start_cluster,  # noqa: E402
                  log, median, node_env, print_table, stop_cluster, summary_ms, wait_final)

from genet import errors, luxi, opcodes  # noqa: E402
from genet_dev import testguest  # noqa: E402

# figure -> (target, goal, Ganeti 3.0.2 on this machine, "higher" if bigger is better)
TARGETS = {
    "add_cli_median_ms": (100.0, 60.0, 1070.0, "lower"),
    "start_overhead_median_ms": (50.0, None, None, "lower"),
    "migration_downtime_median_ms": (30.0, None, None, "lower"),
}
NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
GUEST_MEMORY = 256


# ---------------------------------------------------------------- clusters

def master_of(cluster: dict) -> dict:
    return next(n for n in cluster["nodes"] if n["name"] == cluster["master"])


def node_of(cluster: dict, name: str) -> dict:
    return next(n for n in cluster["nodes"] if n["name"] == name)


def connect(cluster: dict) -> luxi.Client:
    sock = Path(master_of(cluster)["root"]) / "var/run/genet/socket/master.sock"
    if not luxi.wait_for_socket(sock, timeout=30):
        raise BenchError(f"no master daemon on {sock}")
    return luxi.Client(sock, timeout=300)


def instance_dir(node: dict, name: str) -> Path:
    return Path(node["root"]) / "var/run/genet/kvm" / name


# ---------------------------------------------------------------- jobs

def submit_wait(client: luxi.Client, op: opcodes.OpCode, timeout: float = 120.0
                ) -> tuple[float, int, object]:
    """Submit a one-opcode job, follow it to its end; (seconds, job id, opresult[0]).
    Raises BenchError unless it succeeded."""
    t0 = time.perf_counter()
    job_id = client.submit_job([op.to_dict()])
    status = wait_final(client, job_id, timeout)
    elapsed = time.perf_counter() - t0
    if status != "success":
        row = client.query_jobs([job_id], ["opresult", "oplog"])[0]
        raise BenchError(f"{op.OP_ID} job {job_id} ended {status}: {row}")
    result = client.query_jobs([job_id], ["opresult"])[0][0][0]
    return elapsed, job_id, result


def job_times(client: luxi.Client, job_id: int) -> dict:
    """Where a job spent its time, from the queue's own timestamps (ms after received)."""
    fields = ["received_ts", "start_ts", "end_ts", "opstart", "opexec", "opend"]
    row = dict(zip(fields, client.query_jobs([job_id], fields)[0]))

    def ts(value):
        if value is None:
            return None
        if isinstance(value, (list, tuple)):     # (seconds, microseconds), as Ganeti
            return value[0] + value[1] / 1e6
        return float(value)

    base = ts(row["received_ts"])
    if base is None:
        return {}
    out = {}
    for key in ("start_ts", "end_ts"):
        if ts(row[key]) is not None:
            out[key.removesuffix("_ts") + "_ms"] = round(1000 * (ts(row[key]) - base), 2)
    for key in ("opstart", "opexec", "opend"):
        values = row[key] or []
        if values and ts(values[0]) is not None:
            out[key + "_ms"] = round(1000 * (ts(values[0]) - base), 2)
    return out


def instance_fields(client: luxi.Client, name: str, fields: list[str]) -> dict:
    reply = client.query("instance", ["name", *fields], ["=", "name", name])
    rows = [r for r in reply["data"] if r[0][1] == name]
    if not rows:
        raise BenchError(f"instance {name} is not in the config")
    return {f: cell[1] for f, cell in zip(fields, rows[0][1:])}


def remove_instance(client: luxi.Client, name: str) -> None:
    submit_wait(client, opcodes.OpInstanceRemove(instance_name=name, shutdown_timeout=0))


# ---------------------------------------------------------------- 1. gnt-instance add

def bench_add(cluster: dict, client: luxi.Client, runs: int, warmup: int = 2) -> dict:
    """CLI and luxi instance creation, interleaved (the config grows by the same amount
    under both)."""
    master = master_of(cluster)
    env = node_env(master)
    env.pop("PYTHONDONTWRITEBYTECODE", None)   # an installed genet has its bytecode cache
    bindir = master["env"]["PATH"].split(":", 1)[0]
    exe = shutil.which("gnt-instance", path=master["env"]["PATH"])
    if exe is None or os.path.dirname(exe) != bindir:
        raise BenchError(f"gnt-instance resolves to {exe}, not to genet's in {bindir}")

    def cli(name: str) -> float:
        argv = [exe, "add", "-t", "diskless", "--no-start", name]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=120)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise BenchError(f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n"
                             f"{proc.stdout}{proc.stderr}")
        return elapsed

    def job(name: str, submits: list | None = None) -> tuple[float, int]:
        op = opcodes.OpInstanceCreate(instance_name=name, disk_template="diskless", start=False)
        t0 = time.perf_counter()
        job_id = client.submit_job([op.to_dict()])
        if submits is not None:
            submits.append(time.perf_counter() - t0)
        status = wait_final(client, job_id)
        elapsed = time.perf_counter() - t0
        if status != "success":
            raise BenchError(f"OpInstanceCreate({name}) ended {status}: "
                             f"{client.query_jobs([job_id], ['opresult'])[0]}")
        return elapsed, job_id

    for i in range(warmup):
        cli(f"bench-warm-cli{i}")
        job(f"bench-warm-job{i}")
    cli_times, job_times_s, submits, job_ids = [], [], [], []
    for i in range(runs):
        cli_times.append(cli(f"bench-cli{i:02d}"))
        elapsed, job_id = job(f"bench-job{i:02d}", submits)
        job_times_s.append(elapsed)
        job_ids.append(job_id)
    listed = instance_fields(client, f"bench-cli{runs - 1:02d}", ["status", "pnode",
                                                                  "disk_template"])
    result = {"cli": summary_ms(cli_times), "job": summary_ms(job_times_s), "warmup": warmup,
              "cli_command": [exe, "add", "-t", "diskless", "--no-start", "NAME"],
              "job_submit_median_ms": round(1000 * median(submits), 3),
              "last_instance": listed,
              # where the median-ish job spent its time (queue timestamps)
              "job_phases_ms": job_times(client, job_ids[len(job_ids) // 2])}
    floor = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
        floor.append(time.perf_counter() - t0)
    result["python_startup_ms"] = round(1000 * median(floor), 2)
    log(f"add: CLI median {result['cli']['median_ms']:.1f} ms, p90 {result['cli']['p90_ms']:.1f}"
        f" ms; job alone median {result['job']['median_ms']:.1f} ms ({runs} runs each; bare "
        f"python {result['python_startup_ms']:.1f} ms)")
    if result["cli"]["median_ms"] > TARGETS["add_cli_median_ms"][1]:
        # where the command's start-up goes (this run creates one more instance)
        result["importtime"] = importtime([exe, "add", "-t", "diskless", "--no-start",
                                           "bench-importtime"], env)
    return result


# ---------------------------------------------------------------- 2. kvm start overhead

def guest_hvparams(**extra) -> dict:
    guest = testguest.ensure()
    return {"kernel_path": guest["kernel"], "initrd_path": guest["initrd"], "accel": "tcg",
            "serial_console": True, "kernel_args": "console=ttyS0 quiet", **extra}


class Qmp:
    """A minimal blocking QMP client (no asyncio: measures QEMU, not the client)."""

    def __init__(self, path: Path, timeout: float = 5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self._read()                                # greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("QMP connection closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def execute(self, command: str, arguments: dict | None = None):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise BenchError(f"QMP {command}: {reply['error']}")
            # an event: skip

    def close(self) -> None:
        self.sock.close()


def launch_by_hand(argv: list[str], cwd: Path, netns: str, timeout: float = 30.0
                   ) -> tuple[float, float, int]:
    """Run ``argv -daemonize`` (as genet's process.launch does) in ``cwd`` inside ``netns``;
    poll qmp.sock until query-status says running. Returns (seconds until the launcher
    exited, seconds until running, QEMU's pid)."""
    libc = ctypes.CDLL(None, use_errno=True)
    nsfd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)

    def enter_netns():                 # in the child, before exec (no extra nsenter process)
        if libc.setns(nsfd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    qmp_path = cwd / "qmp.sock"
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*argv, "-daemonize"], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=enter_netns)
        _, err = proc.communicate(timeout=timeout)
        t_launched = time.perf_counter() - t0
    finally:
        os.close(nsfd)
    if proc.returncode != 0:
        raise BenchError(f"QEMU by hand failed (exit {proc.returncode}): {err.decode()[-2000:]}")
    deadline = time.monotonic() + timeout
    while True:
        try:
            mon = Qmp(qmp_path)
            try:
                if mon.execute("query-status")["status"] == "running":
                    t_running = time.perf_counter() - t0
                    break
            finally:
                mon.close()
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"QEMU by hand: QMP at {qmp_path} not running after {timeout:.0f}s")
        time.sleep(0.0005)
    pid = int((cwd / "qemu.pid").read_text().strip())
    return t_launched, t_running, pid


def quit_by_hand(cwd: Path, pid: int, timeout: float = 10.0) -> None:
    try:
        mon = Qmp(cwd / "qmp.sock")
        try:
            mon.execute("quit")
        finally:
            mon.close()
    except (OSError, ValueError, BenchError) as err:
        log(f"QMP quit failed ({err}); killing pid {pid}")
    deadline = time.monotonic() + timeout
    while pid_is_qemu(pid, cwd):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            break
        time.sleep(0.02)


def pid_is_qemu(pid: int, cwd: Path) -> bool:
    """``pid`` still runs the QEMU whose pidfile is in ``cwd`` (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X") and os.fsencode(str(cwd / "qemu.pid")) in cmdline


def bench_start(cluster: dict, client: luxi.Client, runs: int, warmup: int = 1) -> dict:
    name = "bench-start"
    node = node_of(cluster, "node1")
    idir = instance_dir(node, name)
    submit_wait(client, opcodes.OpInstanceCreate(
        instance_name=name, disk_template="diskless", pnode=node["name"], nics=[],
        beparams={"memory": GUEST_MEMORY}, hvparams=guest_hvparams(), start=False))
    rounds = []
    argv0 = None
    try:
        for i in range(warmup + runs):
            # (a) genet: OpInstanceStartup submit -> final, then status must be running
            a, job_id, _ = submit_wait(client, opcodes.OpInstanceStartup(instance_name=name))
            status = instance_fields(client, name, ["status"])["status"]
            if status != "running":
                raise BenchError(f"{name} is {status!r} after its startup job")
            runtime = json.loads((idir / "runtime.json").read_text())
            argv = runtime["argv"]
            if argv0 is None:
                argv0 = argv
            elif argv != argv0:
                log(f"round {i}: the argv changed since the first start")
            phases = job_times(client, job_id)
            submit_wait(client, opcodes.OpInstanceShutdown(instance_name=name, timeout=0))
            if idir.exists():
                raise BenchError(f"{idir} still exists after shutdown")
            # (b) the same argv by hand, in node1's namespace, cwd = the instance dir
            idir.mkdir(mode=0o750, parents=True)
            launched = pid = None
            try:
                launched, b, pid = launch_by_hand(argv, idir, node["netns"])
            finally:
                if pid is None and (idir / "qemu.pid").exists():
                    pid = int((idir / "qemu.pid").read_text().strip() or 0)
                if pid:
                    quit_by_hand(idir, pid)
                shutil.rmtree(idir, ignore_errors=True)
            row = {"genet_ms": round(1000 * a, 2), "hand_ms": round(1000 * b, 2),
                   "hand_daemonize_ms": round(1000 * launched, 2),
                   "overhead_ms": round(1000 * (a - b), 2), "job_phases_ms": phases,
                   "warmup": i < warmup}
            rounds.append(row)
            log(f"start {'warm-up' if i < warmup else f'{i - warmup + 1}/{runs}'}: genet "
                f"{row['genet_ms']:.1f} ms, by hand {row['hand_ms']:.1f} ms "
                f"(daemonize returned after {row['hand_daemonize_ms']:.1f}) -> overhead "
                f"{row['overhead_ms']:.1f} ms")
    finally:
        try:
            remove_instance(client, name)
        except (BenchError, errors.GenericError) as err:
            log(f"could not remove {name}: {err}")
    measured = [r for r in rounds if not r["warmup"]]
    a_ms = [r["genet_ms"] for r in measured]
    b_ms = [r["hand_ms"] for r in measured]
    d_ms = [r["overhead_ms"] for r in measured]
    result = {"runs": runs, "warmup": warmup, "rounds": rounds, "argv": argv0,
              "genet_median_ms": round(median(a_ms), 2), "hand_median_ms": round(median(b_ms), 2),
              "overhead_median_ms": round(median(d_ms), 2),
              "overhead_of_medians_ms": round(median(a_ms) - median(b_ms), 2),
              "overhead_min_ms": min(d_ms), "overhead_max_ms": max(d_ms)}
    log(f"start: genet {result['genet_median_ms']:.1f} ms, by hand "
        f"{result['hand_median_ms']:.1f} ms, overhead median {result['overhead_median_ms']:.1f} "
        f"ms ({runs} rounds)")
    return result


# ---------------------------------------------------------------- 3. migration downtime

def wait_ready(node: dict, name: str, timeout: float) -> float:
    log_file = instance_dir(node, name) / "serial.log"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if testguest.READY_MARKER in log_file.read_text(errors="replace"):
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{name}: no {testguest.READY_MARKER} in {log_file} after {timeout:.0f}s")


def migrate_series(cluster: dict, client: luxi.Client, name: str, hvparams: dict,
                   count: int, boot_timeout: float) -> dict:
    """Create and boot ``name`` on node1, then ``count`` migrations node1 <-> node2.

    A failed migration job is recorded (with the nodes' logs saved) and ends the series;
    the figures come from the migrations that succeeded."""
    node1 = node_of(cluster, "node1")
    t_create, _, _ = submit_wait(client, opcodes.OpInstanceCreate(
        instance_name=name, disk_template="diskless", pnode=node1["name"], nics=[],
        beparams={"memory": GUEST_MEMORY}, hvparams=hvparams, start=True), timeout=300)
    migrations, failed = [], []
    try:
        boot = wait_ready(node1, name, boot_timeout)
        log(f"{name}: created and started in {t_create:.2f}s, guest ready {boot:.1f}s later")
        here = "node1"
        for i in range(count):
            target = "node2" if here == "node1" else "node1"
            try:
                elapsed, job_id, res = submit_wait(client, opcodes.OpInstanceMigrate(
                    instance_name=name, target_node=target), timeout=600)
            except BenchError as err:
                saved = save_logs(Path(cluster["dir"]))
                failed.append({"source": here, "target": target, "number": i + 1,
                               "error": str(err), "logs": str(saved) if saved else None})
                log(f"{name}: migration {i + 1} {here} -> {target} FAILED: {err}")
                break
            if not isinstance(res, dict) or res.get("downtime_ms") is None:
                raise BenchError(f"migration job {job_id} returned {res!r}")
            state = instance_fields(client, name, ["pnode", "status"])
            if state != {"pnode": target, "status": "running"}:
                raise BenchError(f"after migrating {name} to {target}: {state}")
            row = {"source": here, "target": target, "downtime_ms": res["downtime_ms"],
                   "total_time_ms": res["total_time_ms"], "job_ms": round(1000 * elapsed, 1),
                   "job_id": job_id}
            migrations.append(row)
            log(f"{name}: {here} -> {target}: downtime {row['downtime_ms']} ms, total "
                f"{row['total_time_ms']} ms, job {row['job_ms']:.0f} ms")
            here = target
    finally:
        try:
            remove_instance(client, name)
        except (BenchError, errors.GenericError) as err:
            log(f"could not remove {name}: {err}")

    def med(key):
        return median([m[key] for m in migrations]) if migrations else None
    return {"instance": name, "hvparams": {k: v for k, v in hvparams.items()
                                           if k not in ("kernel_path", "initrd_path")},
            "memory_mib": GUEST_MEMORY, "boot_to_ready_s": round(boot, 2),
            "planned": count, "migrations": migrations, "failed": failed,
            "downtime_median_ms": med("downtime_ms"),
            "downtime_max_ms": max((m["downtime_ms"] for m in migrations), default=None),
            "total_time_median_ms": med("total_time_ms"), "job_median_ms": med("job_ms")}


def bench_migrate(cluster: dict, client: luxi.Client, count: int, default_count: int,
                  boot_timeout: float) -> dict:
    result = {"fast": migrate_series(cluster, client, "bench-mig",
                                     guest_hvparams(migration_bandwidth=1000), count,
                                     boot_timeout)}
    f = result["fast"]
    log(f"migrate (bandwidth 1000 MiB/s): downtime median {f['downtime_median_ms']} ms, total "
        f"{f['total_time_median_ms']} ms ({len(f['migrations'])} migrations, "
        f"{len(f['failed'])} failed)")
    if default_count:
        result["default"] = migrate_series(cluster, client, "bench-mig-dflt", guest_hvparams(),
                                           default_count, boot_timeout)
        d = result["default"]
        log(f"migrate (default bandwidth): downtime median {d['downtime_median_ms']} ms, total "
            f"{d['total_time_median_ms']} ms ({len(d['migrations'])} migrations, "
            f"{len(d['failed'])} failed)")
    return result


def save_logs(directory: Path) -> Path | None:
    """After a failure: copy every node's var/log (daemon and QEMU logs) next to the cluster
    directory, which dev-cluster stop deletes."""
    dest = directory.with_name(directory.name + "-logs")
    copied = False
    for node_dir in sorted(directory.glob("node*")):
        logs = node_dir / "root" / "var" / "log"
        if logs.is_dir():
            shutil.copytree(logs, dest / node_dir.name, dirs_exist_ok=True)
            copied = True
    if copied:
        log(f"the nodes' logs are kept in {dest}")
    return dest if copied else None


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

    def add(figure, value, unit, key=None):
        row = {"figure": figure, "measured": value, "unit": unit,
               "measured_text": f"{value:.1f} {unit}", "target": "-", "ganeti": "-"}
        if key:
            target, goal, gnt, sense = TARGETS[key]
            sign = ">=" if sense == "higher" else "<="
            row["target"] = f"{sign} {target:g}" + (f" (goal {goal:g})" if goal else "")
            row["ganeti"] = f"{gnt:g} {unit}" if gnt is not None else "-"
            row["status"] = verdict(key, value)
        rows.append(row)

    if "add" in results:
        r = results["add"]
        n = r["cli"]["runs"]
        add(f"gnt-instance add -t diskless --no-start (fake), median of {n}",
            r["cli"]["median_ms"], "ms", "add_cli_median_ms")
        add("gnt-instance add: p90", r["cli"]["p90_ms"], "ms")
        add(f"OpInstanceCreate over luxi, submit -> final, median of {r['job']['runs']}",
            r["job"]["median_ms"], "ms")
    if "start" in results:
        r = results["start"]
        add(f"kvm start: OpInstanceStartup -> running, median of {r['runs']}",
            r["genet_median_ms"], "ms")
        add("kvm start: same argv by hand -> QMP running, median", r["hand_median_ms"], "ms")
        add("kvm start overhead (paired a - b), median", r["overhead_median_ms"], "ms",
            "start_overhead_median_ms")
    if "migrate" in results:
        for key, label in (("fast", "bandwidth 1000"), ("default", "default bandwidth (32)")):
            series = results["migrate"].get(key)
            if not series:
                continue
            n = len(series["migrations"])
            if n:
                add(f"migration downtime, 256 MiB idle, {label}, median of {n}",
                    series["downtime_median_ms"], "ms",
                    "migration_downtime_median_ms" if key == "fast" else None)
                add(f"migration downtime, {label}, max", series["downtime_max_ms"], "ms")
                add(f"migration total time (QEMU), {label}, median",
                    series["total_time_median_ms"], "ms")
                add(f"migration job (submit -> final), {label}, median",
                    series["job_median_ms"], "ms")
            if series["failed"]:
                rows.append({"figure": f"failed migrations, {label}",
                             "measured": len(series["failed"]), "unit": "",
                             "measured_text": f"{len(series['failed'])} of {n + len(series['failed'])}",
                             "target": "0", "ganeti": "-", "status": "MISSED"})
    return rows


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--subnet", help="dev cluster subnet inside 203.0.113.0/24 "
                                         "(default: the free one dev-cluster picks)")
    parser.add_argument("--keep", action="store_true",
                        help="debugging: do not stop the clusters at the end")
    parser.add_argument("--add-runs", type=int, default=20)
    parser.add_argument("--start-runs", type=int, default=10)
    parser.add_argument("--migrations", type=int, default=5,
                        help="migrations node1 <-> node2 at migration_bandwidth=1000")
    parser.add_argument("--default-migrations", type=int, default=1,
                        help="migrations of a second instance at the default bandwidth (0: none)")
    parser.add_argument("--boot-timeout", type=float, default=120,
                        help="seconds for the test guest to print its ready marker")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["add", "start", "migrate"],
                        help="leave out a benchmark (repeatable)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (dev-cluster makes network namespaces)", file=sys.stderr)
        return 1

    def on_sigterm(signum, frame):
        signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)

    results: dict = {}
    doc = {"benchmark": "genet bench/instances.py",
           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "host": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "kernel": platform.release(), "loadavg_at_start": os.getloadavg()},
           "params": {k: v for k, v in vars(args).items() if k not in ("out",)},
           "clusters": {}, "results": results}
    failure = None
    directories: list[Path] = []

    def stop(directory: Path) -> None:
        if failure is not None:
            saved = save_logs(directory)
            if saved:
                doc.setdefault("saved_logs", []).append(str(saved))
        if args.keep:
            log(f"--keep: cluster left running in {directory}; "
                f"stop it with {DEV_CLUSTER} stop --dir {directory}")
            return
        stop_cluster(directory)
        if directory.exists():
            log(f"{directory} still exists after dev-cluster stop")

    try:
        if "add" not in args.skip:
            directory = Path(tempfile.mkdtemp(prefix="genet-bench-", dir="/tmp"))
            directories.append(directory)
            cluster = start_cluster(directory, args.subnet, "fake")
            doc["clusters"]["fake"] = {"dir": str(directory), "subnet": cluster["subnet"]}
            client = connect(cluster)
            results["add"] = bench_add(cluster, client, args.add_runs)
            client.close()
            directories.remove(directory)
            stop(directory)
        if "start" not in args.skip or "migrate" not in args.skip:
            guest = testguest.ensure(log=lambda m: log(f"test guest: {m}"))
            doc["guest"] = {k: guest.get(k) for k in ("kernel", "initrd", "kernel_version")
                            if k in guest}
            directory = Path(tempfile.mkdtemp(prefix="genet-bench-", dir="/tmp"))
            directories.append(directory)
            cluster = start_cluster(directory, args.subnet, "kvm")
            doc["clusters"]["kvm"] = {"dir": str(directory), "subnet": cluster["subnet"]}
            client = connect(cluster)
            if "start" not in args.skip:
                results["start"] = bench_start(cluster, client, args.start_runs)
            if "migrate" not in args.skip:
                results["migrate"] = bench_migrate(cluster, client, args.migrations,
                                                   args.default_migrations, args.boot_timeout)
            client.close()
    except (BenchError, errors.GenericError, subprocess.SubprocessError, OSError) as err:
        failure = f"{type(err).__name__}: {err}"
        log(f"FAILED: {failure}")
    except KeyboardInterrupt:
        failure = "interrupted"
        log("interrupted")
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)   # let the clusters be stopped
        for directory in directories:
            stop(directory)

    rows = table_rows(results)
    doc["table"] = rows
    doc["error"] = failure
    doc["ok"] = failure is None and all(r.get("status") != "MISSED" for r in rows)
    print()
    print_table(rows)
    it = results.get("add", {}).get("importtime")
    if it:
        print(f"\ngnt-instance imports: {it['total_ms']:.1f} ms in total (python -X importtime); "
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
