"""A Jepsen-style test of automatic master failover (issue 16) on a 3-node dev cluster (fake
hypervisor, ``gnt-cluster modify --auto-master-failover yes``).

Clients (3 threads) submit numbered operations for GENET_JEPSEN_SECONDS (default 300): a job
(``gnt-debug delay --submit --reason jepsen-N 0``) or a config change (``gnt-cluster add-tags
--reason jepsen-N jepsen-N``), each to the node that accepted the client's last operation first,
then to the others (the master moves). Every attempt has a number of its own, so a number found
twice is a duplicate, never a retry. An operation is *acknowledged* when its command exits 0 (and a
job printed its ``JobID``). Meanwhile a nemesis (random.Random(GENET_JEPSEN_SEED), default 16)
makes one fault at a time: kill a node (``dev-cluster kill-node``) or cut its link (``partition``),
the master more often than not, waits 15-25 s so that a failover happens, then repairs it
(``restart``, ``heal``) and waits for the node to follow the master again: at most one node is
ever down, a majority of the three candidates always remains.

At the end every node is up and all three agree on one master, whose ``gnt-cluster verify``
passes. Then the checker:

1. every acknowledged operation is in the final master's job queue (``gnt-job list --archived``,
   found by the ``jepsen-N`` of its reason trail) exactly once, under the job ID it was given; no
   number appears twice and none that was never sent;
2. every acknowledged tag is in the final config (``gnt-cluster list-tags``), and no ``jepsen-*``
   tag that was never sent;
3. no two masters accepted jobs in overlapping lease periods. A master's *term* is built from the
   logs: it starts when its genet-masterd logs "serving on" (it accepts jobs only after that line)
   and ends at its "stepping down as master" (logged once the lease may have expired, i.e. after
   it stopped accepting), at its node daemon's "masterd stopped", or when the nemesis killed its
   node; its epoch is that of the node daemon's last "won the election (epoch E)" before it (the
   first master holds the epoch that turning automatic failover on gave it). Terms must not
   overlap and their epochs must rise; every acknowledged operation's [sent, acked] interval must
   meet a term of the node that accepted it, and its job's received time (the master's own clock)
   must lie inside that term. Log times are the machine's wall clock, so the clients record
   time.time().

A failure names the operation or term that broke the rule; the whole history is written to
``history.json`` beside the cluster. A run of 300 s takes about 6 minutes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
import json
import os
import random
import re
import shutil
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import devnet
import pytest
from devnet import dev_cluster, tool, wait_for

NODES = ("node1", "node2", "node3")
SECONDS = float(os.environ.get("GENET_JEPSEN_SECONDS", "300"))
SEED = int(os.environ.get("GENET_JEPSEN_SEED", "16"))
CLIENTS = 3
OP_TIMEOUT = 30             # an attempt not answered by then is indeterminate (not acknowledged)
FAULT_S = (15, 25)          # a fault lasts this long: long enough for a failover
SETTLE_S = (5, 10)          # after a repair and the node's return, before the next fault
TAG = "jepsen-"
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def wall(stamp: str) -> float:
    """A log line's or gnt-job's local time as a Unix time."""
    stamp = stamp.replace(",", ".")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in stamp else "%Y-%m-%d %H:%M:%S"
    return datetime.datetime.strptime(stamp, fmt).timestamp()


def hms(when: float | None) -> str:
    if when is None:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1000):03d}"


@dataclasses.dataclass
class Op:
    n: int
    kind: str               # job | tag
    node: str
    client: int
    sent: float             # wall clock (time.time()) before the command was started
    done: float = 0.0       # wall clock once it returned
    sent_mono: float = 0.0
    done_mono: float = 0.0
    outcome: str = ""       # ack | fail | timeout
    job_id: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        return (f"{self.kind} {TAG}{self.n} (client {self.client}) on {self.node}: {self.outcome}"
                f"{f' job {self.job_id}' if self.job_id is not None else ''}, sent {hms(self.sent)}, "
                f"answered {hms(self.done)}{f' ({self.detail})' if self.detail else ''}")


@dataclasses.dataclass
class Fault:
    kind: str               # kill | partition | restart | heal
    node: str
    start: float
    end: float
    was_master: bool = False


@dataclasses.dataclass
class Term:
    node: str
    epoch: int | None
    start: float
    end: float
    why_end: str

    def __str__(self) -> str:
        return (f"{self.node} epoch {self.epoch if self.epoch is not None else '?'} "
                f"[{hms(self.start)} .. {hms(self.end)}] (ended: {self.why_end})")


class Dev(devnet.Dev):
    def log_lines(self, node: str, daemon: str) -> list[tuple[float, str]]:
        path = self.root(node) / f"var/log/genet/{daemon}.log"
        lines = []
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return lines
        for line in text.splitlines():
            found = STAMP.match(line)
            if found:
                lines.append((wall(found.group(1)), line))
        return lines

    def ssconf_master(self, node: str) -> str | None:
        try:
            return (self.root(node) / "var/lib/genet/ssconf_master_node").read_text().strip()
        except OSError:
            return None


class History:
    """What the clients and the nemesis did, shared between their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops: list[Op] = []
        self.faults: list[Fault] = []
        self.numbers = itertools.count(1)
        self.last_ack: Op | None = None
        self.down: dict[str, str] = {}     # node -> the fault not repaired yet

    def number(self) -> int:
        with self.lock:
            return next(self.numbers)

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)
            if op.outcome == "ack" and (self.last_ack is None or op.done > self.last_ack.done):
                self.last_ack = op


def attempt(dev: Dev, history: History, client: int, kind: str, node: str) -> Op:
    op = Op(history.number(), kind, node, client, time.time())
    mark = f"{TAG}{op.n}"
    if kind == "job":
        cmd = ("gnt-debug", "delay", "--submit", "--reason", mark, "0")
    else:
        cmd = ("gnt-cluster", "add-tags", "--reason", mark, mark)
    op.sent_mono = time.monotonic()
    try:
        proc = dev.run(node, *cmd, ok=False, timeout=OP_TIMEOUT)
    except Exception as err:            # subprocess.TimeoutExpired: the command was killed
        op.done, op.done_mono = time.time(), time.monotonic()
        op.outcome, op.detail = "timeout", type(err).__name__
    else:
        op.done, op.done_mono = time.time(), time.monotonic()
        found = re.search(r"JobID: (\d+)", proc.stdout)
        if proc.returncode == 0 and (kind == "tag" or found):
            op.outcome = "ack"
            op.job_id = int(found.group(1)) if found else None
        else:
            op.outcome = "fail"
            lines = (proc.stderr + proc.stdout).strip().splitlines()
            op.detail = f"rc {proc.returncode}: {lines[-1][:160] if lines else ''}"
    history.add(op)
    return op


def client_loop(dev: Dev, history: History, client: int, stop: threading.Event) -> None:
    rnd = random.Random(SEED * 100 + client)
    preferred = NODES[0]
    while not stop.is_set():
        kind = "tag" if rnd.random() < 0.3 else "job"
        order = [preferred] + [n for n in NODES if n != preferred]
        for node in order:
            if stop.is_set():
                return
            if attempt(dev, history, client, kind, node).outcome == "ack":
                preferred = node
                break
        else:
            stop.wait(0.5)              # nobody accepts: a failover is under way
        stop.wait(0.05)


def current_master(dev: Dev, history: History, down: set[str]) -> str | None:
    """The node that acknowledged the latest operation (within 5 s), else the master most nodes'
    ssconf names."""
    last = history.last_ack
    if last is not None and time.time() - last.done < 5 and last.node not in down:
        return last.node
    votes = Counter(dev.ssconf_master(n) for n in NODES if n not in down)
    votes.pop(None, None)
    return votes.most_common(1)[0][0] if votes else None


def nemesis(dev: Dev, history: History, deadline: float, rnd: random.Random) -> None:
    def step(kind: str, node: str, master: str | None = None) -> Fault:
        fault = Fault(kind, node, time.time(), 0.0, node == master)
        proc = tool(kind if kind != "kill" else "kill-node", "--dir", str(dev.dir), node, timeout=180)
        fault.end = time.time()
        assert proc.returncode == 0, f"dev-cluster {kind} {node}: {proc.stdout}{proc.stderr}"
        with history.lock:
            history.faults.append(fault)
        print(f"[nemesis {hms(fault.start)}] {kind} {node}{' (the master)' if fault.was_master else ''}",
              flush=True)
        return fault

    time.sleep(5)                       # the clients' first acknowledgements, from the first master
    while time.monotonic() + FAULT_S[1] + 20 < deadline:
        master = current_master(dev, history, set())
        node = master if master is not None and rnd.random() < 0.6 else rnd.choice(NODES)
        kind = rnd.choice(("kill", "partition"))
        step(kind, node, master)
        with history.lock:
            history.down[node] = kind
        time.sleep(rnd.uniform(*FAULT_S))
        step("restart" if kind == "kill" else "heal", node)
        with history.lock:
            history.down.pop(node, None)

        def follows() -> bool:
            # back: it follows the master (the config of the master's heartbeat), or is it
            master = current_master(dev, history, set())
            return master is not None and dev.ssconf_master(node) == master \
                and dev.stored_config(node)["cluster"]["master_node"] == master
        wait_for(follows, 90, f"{node} to follow the master again after the {kind}", interval=0.5)
        time.sleep(rnd.uniform(*SETTLE_S))
    while time.monotonic() < deadline:
        time.sleep(0.5)


def watch_queues(dev: Dev, stop: threading.Event, out: Path) -> None:
    """Every half second, each node's job queue on disk (count, lowest and highest ID), written to
    ``out`` when it changes: when a queue lost jobs, and on which node."""
    last: dict[str, tuple] = {}
    with out.open("w") as handle:
        while not stop.wait(0.5):
            for node in NODES:
                try:
                    uri = f"file:{dev.root(node) / 'var/lib/genet/queue.db'}?mode=ro"
                    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1)) as db:
                        row = db.execute("SELECT count(*), min(id), max(id) FROM jobs").fetchone()
                except sqlite3.Error as err:
                    row = (str(err),)
                if last.get(node) != row:
                    shrunk = node in last and len(row) == 3 and len(last[node]) == 3 and row[0] < last[node][0]
                    handle.write(f"{hms(time.time())} {node} jobs {row}{'  SHRANK' if shrunk else ''}\n")
                    handle.flush()
                    last[node] = row


def build_terms(dev: Dev, history: History, initial: tuple[str, int], end: float) -> tuple[list[Term], list[str]]:
    """Every master's term from the logs (see the module's docstring), and what looked wrong."""
    problems = []
    terms = []
    for node in NODES:
        events = []             # (time, order, what, epoch)
        for when, line in dev.log_lines(node, "genet-masterd"):
            if " serving on " in line:
                events.append((when, 1, "start", None))
            elif "stepping down as master" in line:
                events.append((when, 0, "stepping down", None))
        for when, line in dev.log_lines(node, "genet-noded"):
            found = re.search(r"won the election \(epoch (\d+)\)|takes the master role .*\(epoch (\d+)\)", line)
            if found:
                events.append((when, 0, "elected", int(found.group(1) or found.group(2))))
            elif "masterd stopped: the master role is free again" in line:
                events.append((when, 0, "masterd stopped", None))
        for fault in history.faults:
            if fault.node == node and fault.kind == "kill":
                events.append((fault.end, 0, "node killed", None))
        events.sort(key=lambda e: (e[0], e[1]))
        open_term: Term | None = None
        epoch = initial[1] if node == initial[0] else None
        for when, _, what, value in events:
            if what == "elected":
                epoch = value
            elif what == "start":
                if open_term is not None:
                    open_term.end, open_term.why_end = when, "masterd started again"
                    terms.append(open_term)
                if epoch is None:
                    problems.append(f"{node}: genet-masterd started at {hms(when)} without an election won before it")
                open_term = Term(node, epoch, when, end, "still master at the end")
                epoch = None            # a later masterd needs an election of its own
            elif open_term is not None:
                open_term.end, open_term.why_end = when, what
                terms.append(open_term)
                open_term = None
        if open_term is not None:
            terms.append(open_term)
    terms.sort(key=lambda t: t.start)
    return terms, problems


def opcodes_of(text: str) -> list[dict]:
    """The opcodes of gnt-job list's ``ops`` column: JSON objects joined by commas."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        opcode, at = decoder.raw_decode(text, at)
        found.append(opcode)
        at += 1 if text[at:at + 1] == "," else 0
    return found


def check(dev: Dev, history: History, master: str, terms: list[Term]) -> list[str]:
    violations = []
    ops = history.ops
    sent = {op.n: op for op in ops}
    acked = [op for op in ops if op.outcome == "ack"]

    # 1. the job queue: every acknowledged operation exactly once, under its own job ID
    proc = dev.run(master, "gnt-job", "list", "--archived", "--no-headers", "-o", "id,received_ts,ops",
                   "--separator", "|", timeout=120)
    (dev.dir.parent / "final-jobs.txt").write_text(proc.stdout)
    carriers: dict[int, list[tuple[int, float]]] = {}
    for line in proc.stdout.splitlines():
        job_id, received, ops_json = line.split("|", 2)
        for opcode in opcodes_of(ops_json):
            for source, text, *_ in opcode.get("reason", []):
                if source == "gnt:user" and str(text).startswith(TAG):
                    carriers.setdefault(int(text[len(TAG):]), []).append((int(job_id), wall(received)))
    for n, jobs in sorted(carriers.items()):
        if n not in sent:
            violations.append(f"job(s) {[j for j, _ in jobs]} carry {TAG}{n}, which no client sent")
        elif len(jobs) > 1:
            violations.append(f"{TAG}{n} is in the queue {len(jobs)} times (jobs {[j for j, _ in jobs]}): {sent[n]}")
    for op in acked:
        jobs = carriers.get(op.n, [])
        if not jobs:
            violations.append(f"acknowledged but not in {master}'s job queue: {op}")
        elif op.job_id is not None and jobs[0][0] != op.job_id:
            violations.append(f"acknowledged as job {op.job_id} but the queue holds {TAG}{op.n} as job "
                              f"{jobs[0][0]}: {op}")

    # 2. the config: every acknowledged tag, none never sent
    tags = set(dev.run(master, "gnt-cluster", "list-tags", timeout=120).stdout.split())
    for op in acked:
        if op.kind == "tag" and f"{TAG}{op.n}" not in tags:
            violations.append(f"acknowledged but not among the cluster's tags: {op}")
    for tag in sorted(tags):
        if tag.startswith(TAG):
            n = int(tag[len(TAG):])
            if n not in sent or sent[n].kind != "tag":
                violations.append(f"tag {tag} is in the config but no client sent it as a tag")

    # 3. terms: no overlap, rising epochs; every acknowledged operation inside a term of its node
    for before, after in zip(terms, terms[1:]):
        if after.start < before.end:
            violations.append(f"two masters at once: {before} overlaps {after}")
        if before.epoch is not None and after.epoch is not None and after.epoch <= before.epoch:
            violations.append(f"epoch did not rise: {before} then {after}")
    for op in acked:
        mine = [t for t in terms if t.node == op.node]
        if not any(t.start <= op.done and op.sent <= t.end for t in mine):
            violations.append(f"acknowledged outside every term of {op.node} ({', '.join(map(str, mine)) or 'none'}):"
                              f" {op}")
        jobs = carriers.get(op.n, [])
        if jobs:
            received = jobs[0][1]
            # gnt-job shows microseconds, the logs milliseconds (truncated): 1 ms of slack
            if not any(t.start - 0.001 <= received <= t.end + 0.001 for t in mine):
                violations.append(f"job received at {hms(received)} by {op.node} outside its terms "
                                  f"({', '.join(map(str, mine)) or 'none'}): {op}")
    return violations


def summary(history: History, terms: list[Term], start: float) -> None:
    ops = history.ops
    by = Counter((op.kind, op.outcome) for op in ops)
    acked_by_node = Counter(op.node for op in ops if op.outcome == "ack")
    print(f"\n=== jepsen summary (seed {SEED}, {SECONDS:.0f} s) ===")
    print(f"attempts {len(ops)}: jobs acked {by['job', 'ack']}, failed {by['job', 'fail']}, "
          f"timed out {by['job', 'timeout']}; tags acked {by['tag', 'ack']}, failed {by['tag', 'fail']}, "
          f"timed out {by['tag', 'timeout']}; acked by node {dict(sorted(acked_by_node.items()))}")
    print("faults:")
    for fault in history.faults:
        print(f"  +{fault.start - start:6.1f}s {fault.kind:9} {fault.node}{' (master)' if fault.was_master else ''}")
    print(f"terms ({len(terms)}, {len(terms) - 1} master changes):")
    for term in terms:
        ops_in = sum(1 for op in ops if op.outcome == "ack" and op.node == term.node
                     and term.start <= op.done and op.sent <= term.end)
        print(f"  {term}  {ops_in} ops acked")
    gaps = [after.start - before.end for before, after in zip(terms, terms[1:])]
    if gaps:
        print(f"time without a master between terms: {', '.join(f'{g:.1f}' for g in gaps)} s")


@contextlib.contextmanager
def keep_logs(dev: Dev, where: Path):
    """The nodes' logs copied to ``where`` before the cluster (and its directory) goes."""
    try:
        yield
    finally:
        for node in NODES:
            for path in [*(dev.root(node) / "var/log/genet").glob("*.log"),
                         dev.root(node) / "var/lib/genet/queue.db"]:
                (where / node).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, where / node / path.name)
        print(f"logs: {where}", flush=True)


@pytest.mark.timeout(SECONDS + 600)     # the run itself, then the repair, the agreement and the checks
def test_clients_keep_every_acknowledged_operation_while_a_nemesis_kills_and_partitions_nodes(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("jepsen")      # short: the master's unix socket lives below it
    print(f"\njepsen: seed {SEED} (GENET_JEPSEN_SEED), {SECONDS:.0f} s (GENET_JEPSEN_SECONDS)", flush=True)
    rnd = random.Random(SEED)
    with dev_cluster(tmp_path / "cluster", cls=Dev) as dev, keep_logs(dev, tmp_path / "logs"):
        dev.run("node1", "gnt-cluster", "modify", "--auto-master-failover", "yes")
        initial = ("node1", dev.stored_config("node1")["cluster"]["master_epoch"])
        history = History()
        stop = threading.Event()
        start = time.time()
        deadline = time.monotonic() + SECONDS
        clients = [threading.Thread(target=client_loop, args=(dev, history, i, stop), daemon=True)
                   for i in range(CLIENTS)]
        for thread in clients:
            thread.start()
        watcher = threading.Thread(target=watch_queues, args=(dev, stop, tmp_path / "queues.txt"), daemon=True)
        watcher.start()
        try:
            nemesis(dev, history, deadline, rnd)
        finally:
            stop.set()
            for thread in clients:
                thread.join(OP_TIMEOUT * 2)
            for node, kind in list(history.down.items()):      # what the nemesis left: repaired
                tool("restart" if kind == "kill" else "heal", "--dir", str(dev.dir), node, timeout=180)
            (tmp_path / "history.json").write_text(json.dumps(
                {"seed": SEED, "seconds": SECONDS, "ops": [dataclasses.asdict(o) for o in history.ops],
                 "faults": [dataclasses.asdict(f) for f in history.faults]}, indent=1))
            print(f"history: {tmp_path / 'history.json'}", flush=True)

        # all three agree on one master, which serves
        def agreed():
            masters = {dev.ssconf_master(n) for n in NODES} | {dev.stored_config(n)["cluster"]["master_node"]
                                                                for n in NODES}
            running = [n for n in NODES if dev.masterd_runs(n)]
            if len(masters) == 1 and running == list(masters):
                return running[0]
            return None
        master = wait_for(agreed, 120, "the three nodes to agree on one master, its masterd the only one",
                          interval=1)

        def verified():
            proc = dev.run(master, "gnt-cluster", "verify", ok=False, timeout=120)
            return proc if proc.returncode == 0 else None
        # right after the last repair verify may still see a candidate's etcd member down, or a
        # node catching up: it must pass within a minute
        proc = wait_for(verified, 60, f"gnt-cluster verify on {master} to pass", interval=3)
        print(f"final master {master}; gnt-cluster verify:\n{proc.stdout.strip()}", flush=True)
        end = time.time()
        time.sleep(0.5)                 # the last log lines written
        terms, problems = build_terms(dev, history, initial, end)
        summary(history, terms, start)
        violations = problems + check(dev, history, master, terms)
        if terms and terms[-1].node != master:
            violations.append(f"the last term is {terms[-1]} but {master} is the master")
        for line in violations:
            print(f"VIOLATION: {line}")
        assert not violations, f"{len(violations)} violation(s), the first: {violations[0]}"
        acked = sum(1 for op in history.ops if op.outcome == "ack")
        assert acked >= SECONDS / 10, f"only {acked} operations acknowledged in {SECONDS:.0f} s"
        assert len(terms) >= 2, "no failover happened"
