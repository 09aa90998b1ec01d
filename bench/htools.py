#!/usr/bin/env python3
"""hbal on generated clusters: Ganeti 3.0.2's hbal against genet's, side by side.

    .venv/bin/python bench/htools.py [--sizes 20,200,1000] [--seed 1] [--keep DIR] [--json]

For each size N it writes a cluster of N nodes and 10 × N instances in Ganeti's htools text
format (what `hbal -t FILE` reads), then runs the real hbal and genet's hbal on that file, each
with a time limit, and prints initial score, final score, number of moves and wall time of
both. A run that hits its time limit is reported with the last move it printed (hbal flushes
each move line as soon as it has chosen it).

The clusters are meant to give the balancer work on every axis it scores, and to be valid:
memory and disk ~70 % used overall but crowded onto the first quarter of the nodes (up to
95 %), mostly DRBD instances with some plain ones, a few instances administratively down,
racks as location tags (`htools:nlocation:rack`, four nodes a rack) and services as exclusion
tags (`htools:iextags:service`). Every node's free memory is exactly its total minus the node's
own memory minus its running primaries, and its free disk its total minus the disks of its
primaries and DRBD secondaries, as Ganeti's loader checks.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pty
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REAL_HBAL = "/usr/lib/ganeti/3.0/usr/bin/hbal"
GENET_HBAL = str(Path(sys.executable).with_name("hbal"))    # the hbal of the venv running this script
DEFAULT_SIZES = (20, 200, 1000)

INSTANCES_PER_NODE = 10
USED_TARGET = 0.70          # memory and disk, over the whole cluster
NODE_FILL_CAP = 0.95        # no node is filled beyond this while placing
HOT_WEIGHT = 3              # the first quarter of the nodes is this much likelier to be picked
NODES_PER_RACK = 4
NODE_MEM = 1024             # n_mem: memory the node itself uses, MiB

GIB = 1024
TIB = 1024 * GIB
# (t_mem MiB, t_cpu, t_disk MiB, spindles): a small and a big machine, about half of the nodes
# each. Spindles only set a limit here (the policy's spindle ratio 32 × spindles on the disks of
# a node's primaries and secondaries); one spindle would put crowded nodes over it.
NODE_MODELS = ((64 * GIB, 16, 1 * TIB, 2), (128 * GIB, 32, 2 * TIB, 4))
# Instance sizes and how often they are drawn; 10 instances a node need ~7 GiB each on
# average for 70 % of 64/128 GiB nodes, and ~60 GiB of disk for 70 % of 1/2 TiB with DRBD's
# second copy.
MEM_SIZES = (1 * GIB, 2 * GIB, 4 * GIB, 8 * GIB, 16 * GIB)
MEM_WEIGHTS = (10, 15, 25, 30, 20)
DISK_SIZES = (10 * GIB, 20 * GIB, 50 * GIB, 100 * GIB)
DISK_WEIGHTS = (15, 25, 30, 30)
VCPUS = (1, 2, 2, 4)
PLAIN_SHARE = 0.15
DOWN_SHARE = 0.05
SERVICES = (("web", 0.15), ("db", 0.08), ("cache", 0.05), ("dns", 0.02))
BACKUP_SHARE = 0.20         # a tag that is neither location nor exclusion

# Ganeti's default instance policy, written out so that the file carries its own
# (ispec: memory, cpus, disk size, disk count, nics, spindle use)
IPOLICY_STD = "128,1,1024,1,1,1"
IPOLICY_MINMAX = "128,1,1024,1,1,1;32768,8,1048576,16,8,12"
IPOLICY_TEMPLATES = "drbd,plain,diskless,file,sharedfile,blockdev,rbd,ext"
IPOLICY_RATIOS = ("4.0", "32.0")     # vcpu ratio, spindle ratio


# ---------------------------------------------------------------- the cluster

@dataclasses.dataclass
class Node:
    name: str
    t_mem: int
    t_disk: int
    t_cpu: int
    spindles: int
    rack: str
    hot: bool
    master: bool = False
    used_mem: int = 0       # running primaries
    used_disk: int = 0      # primaries and DRBD secondaries
    primaries: int = 0
    secondaries: int = 0

    @property
    def f_mem(self) -> int:
        return self.t_mem - NODE_MEM - self.used_mem

    @property
    def f_disk(self) -> int:
        return self.t_disk - self.used_disk

    def fits_memory(self, mem: int) -> bool:
        return NODE_MEM + self.used_mem + mem <= NODE_FILL_CAP * self.t_mem

    def fits_disk(self, disk: int) -> bool:
        return self.used_disk + disk <= NODE_FILL_CAP * self.t_disk


@dataclasses.dataclass
class Instance:
    name: str
    mem: int
    disk: int
    vcpus: int
    running: bool
    template: str           # "drbd" or "plain"
    tags: list[str]
    pnode: str = ""
    snode: str = ""


@dataclasses.dataclass
class Cluster:
    group_name: str
    group_uuid: str
    nodes: list[Node]
    instances: list[Instance]
    tags: list[str]


def make_nodes(rng: random.Random, count: int) -> list[Node]:
    """N nodes, racks of four, the first quarter marked hot (where placement crowds)."""
    width = max(3, len(str(count)))
    hot_count = max(1, count // 4)
    nodes = []
    for i in range(count):
        t_mem, t_cpu, t_disk, spindles = rng.choice(NODE_MODELS)
        nodes.append(Node(name=f"node{i + 1:0{width}d}", t_mem=t_mem, t_disk=t_disk, t_cpu=t_cpu,
                          spindles=spindles,
                          rack=f"r{i // NODES_PER_RACK + 1:0{width}d}", hot=i < hot_count,
                          master=i == 0))
    return nodes


def instance_tags(rng: random.Random) -> list[str]:
    tags = []
    draw = rng.random()
    for service, share in SERVICES:
        if draw < share:
            tags.append(f"service:{service}")
            break
        draw -= share
    if rng.random() < BACKUP_SHARE:
        tags.append("backup:daily")
    return tags


def make_instances(rng: random.Random, count: int) -> list[Instance]:
    width = max(4, len(str(count)))
    instances = []
    for i in range(count):
        instances.append(Instance(
            name=f"inst{i + 1:0{width}d}",
            mem=rng.choices(MEM_SIZES, MEM_WEIGHTS)[0],
            disk=rng.choices(DISK_SIZES, DISK_WEIGHTS)[0],
            vcpus=rng.choice(VCPUS),
            running=rng.random() >= DOWN_SHARE,
            template="plain" if rng.random() < PLAIN_SHARE else "drbd",
            tags=instance_tags(rng)))
    return instances


def fit_sizes(rng: random.Random, instances: list[Instance], attr: str, sizes: tuple[int, ...],
              target: float, counts, tolerance: float = 0.005) -> None:
    """Step random instances' sizes up or down a notch until the total is within tolerance of target.

    counts(inst) says how much one unit of the instance's size weighs in the total (0 for the
    memory of a stopped instance, 2 for the disk of a DRBD instance).
    """
    def total() -> float:
        return sum(getattr(inst, attr) * counts(inst) for inst in instances)

    current = total()
    movable = [inst for inst in instances if counts(inst)]
    for _ in range(100 * len(instances)):
        if abs(current - target) <= tolerance * target:
            return
        inst = rng.choice(movable)
        step = sizes.index(getattr(inst, attr)) + (1 if current < target else -1)
        if 0 <= step < len(sizes):
            current += (sizes[step] - getattr(inst, attr)) * counts(inst)
            setattr(inst, attr, sizes[step])
    raise RuntimeError(f"the instances' {attr} cannot be brought to {USED_TARGET:.0%} of the nodes' "
                       "with these sizes")


class NodePicker:
    """Random choice of a node that passes a test, weighted by size (hot nodes HOT_WEIGHT times more).

    Draws a few times at random and falls back to a scan of all nodes, so that placing 10,000
    instances stays quick while a node is never filled past the cap.
    """

    def __init__(self, rng: random.Random, nodes: list[Node]) -> None:
        self.rng = rng
        self.nodes = nodes
        self.weights = [node.t_mem * (HOT_WEIGHT if node.hot else 1) for node in nodes]

    def pick(self, accept) -> Node:
        for _ in range(20):
            node = self.rng.choices(self.nodes, self.weights)[0]
            if accept(node):
                return node
        fitting = [(node, weight) for node, weight in zip(self.nodes, self.weights) if accept(node)]
        if not fitting:
            raise RuntimeError("no node has room left: the cluster is too full to place every instance")
        return self.rng.choices([n for n, _ in fitting], [w for _, w in fitting])[0]


def place(rng: random.Random, nodes: list[Node], instances: list[Instance]) -> None:
    """Primary and (DRBD) secondary for every instance, in the (random) order they were made.

    Hot nodes are picked more often until they reach the cap, so they end up with more
    instances of every size (biggest first would hand them only the big ones).
    """
    picker = NodePicker(rng, nodes)
    for inst in instances:
        mem = inst.mem if inst.running else 0
        primary = picker.pick(lambda n: n.fits_memory(mem) and n.fits_disk(inst.disk))
        primary.used_mem += mem
        primary.used_disk += inst.disk
        primary.primaries += 1
        inst.pnode = primary.name
        if inst.template == "drbd":
            secondary = picker.pick(lambda n: n is not primary and n.fits_disk(inst.disk))
            secondary.used_disk += inst.disk
            secondary.secondaries += 1
            inst.snode = secondary.name


def generate(node_count: int, seed: int) -> Cluster:
    """A cluster of node_count nodes and 10 instances a node; the same seed gives the same cluster."""
    rng = random.Random(f"{seed}:{node_count}")
    nodes = make_nodes(rng, node_count)
    instances = make_instances(rng, INSTANCES_PER_NODE * node_count)
    mem_target = USED_TARGET * sum(n.t_mem for n in nodes) - NODE_MEM * node_count
    fit_sizes(rng, instances, "mem", MEM_SIZES, mem_target, lambda i: 1 if i.running else 0)
    disk_target = USED_TARGET * sum(n.t_disk for n in nodes)
    fit_sizes(rng, instances, "disk", DISK_SIZES, disk_target, lambda i: 2 if i.template == "drbd" else 1)
    place(rng, nodes, instances)
    group_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return Cluster(group_name="default", group_uuid=group_uuid, nodes=nodes, instances=instances,
                   tags=["htools:nlocation:rack", "htools:iextags:service"])


# ---------------------------------------------------------------- the text format

def roomy(nodes: int, seed: int):
    """The generated cluster with twice the memory and disk on every node (room for new
    instances: what bench/hail.py and bench/hspace.py plan on), as genet's cluster records."""
    from genet.htools import text
    data = text.parse(to_text(generate(nodes, seed)))
    for n in data.nodes:
        n.f_mem += int(n.t_mem)
        n.t_mem *= 2
        n.f_dsk += int(n.t_dsk)
        n.t_dsk *= 2
    return data


def node_line(node: Node, group_uuid: str) -> str:
    # name|t_mem|n_mem|f_mem|t_disk|f_disk|t_cpu|offline|group|spindles|tags|excl_stor|
    # free_spindles|node_cpus|cpu_speed
    flag = "M" if node.master else "N"
    return (f"{node.name}|{node.t_mem}|{NODE_MEM}|{node.f_mem}|{node.t_disk}|{node.f_disk}|"
            f"{node.t_cpu}|{flag}|{group_uuid}|{node.spindles}|rack:{node.rack}|N|{node.spindles}|1|1.0")


def instance_line(inst: Instance) -> str:
    # name|mem|disk|vcpus|status|auto_balance|pnode|snode|template|tags|spindle_use|spindles|forthcoming
    status = "running" if inst.running else "ADMIN_down"
    return (f"{inst.name}|{inst.mem}|{inst.disk}|{inst.vcpus}|{status}|Y|{inst.pnode}|{inst.snode}|"
            f"{inst.template}|{','.join(inst.tags)}|1|-|N")


def ipolicy_line(owner: str) -> str:
    return "|".join((owner, IPOLICY_STD, IPOLICY_MINMAX, IPOLICY_TEMPLATES) + IPOLICY_RATIOS)


def to_text(cluster: Cluster) -> str:
    """Ganeti's htools text format: groups, nodes, instances, cluster tags, policies, an empty line between."""
    sections = [
        [f"{cluster.group_name}|{cluster.group_uuid}|preferred||"],
        [node_line(node, cluster.group_uuid) for node in cluster.nodes],
        [instance_line(inst) for inst in sorted(cluster.instances, key=lambda i: i.name)],
        list(cluster.tags),
        [ipolicy_line(""), ipolicy_line(cluster.group_name)],
    ]
    return "\n".join("\n".join(lines) + "\n" for lines in sections)


# ---------------------------------------------------------------- running hbal

MOVE_LINE = re.compile(r"^\s*(\d+)\.\s+(\S+)\s+(\S+)\s+=>\s+(\S+)\s+(\S+)\s+a=")
INITIAL = re.compile(r"^Initial (?:score:|coefficients: overall) (\S+)")     # the second with -v -v -v
IMPROVED = re.compile(r"^Cluster score improved from (\S+) to (\S+)")
FINAL_COEFFICIENTS = re.compile(r"^Final coefficients: +overall (\S+)")
LENGTH = re.compile(r"^Solution length=(\d+)")
BALANCED = re.compile(r"^Cluster is already well balanced \(initial score (\S+),")


@dataclasses.dataclass
class HbalRun:
    tool: str
    status: str = ""            # done, balanced, no solution, timeout, error
    initial: float | None = None
    final: float | None = None
    moves: int = 0
    seconds: float = 0.0
    last_move: str = ""
    first_move_at: float | None = None      # seconds after the start
    last_move_at: float | None = None
    returncode: int | None = None
    stderr_tail: str = ""

    def read_line(self, line: str, at: float = 0.0) -> None:
        """Take one line of hbal's output, printed at seconds after the start, into account."""
        if m := MOVE_LINE.match(line):
            self.moves = int(m.group(1))
            self.final = float(m.group(5))
            self.last_move = line.strip()
            if self.first_move_at is None:
                self.first_move_at = at
            self.last_move_at = at
        elif m := INITIAL.match(line):
            self.initial = float(m.group(1))
        elif m := IMPROVED.match(line):
            self.initial, self.final = float(m.group(1)), float(m.group(2))
            self.status = "done"
        elif m := FINAL_COEFFICIENTS.match(line):
            self.final = float(m.group(1))
            self.status = "done"
        elif m := LENGTH.match(line):
            self.moves = int(m.group(1))
        elif m := BALANCED.match(line):
            self.initial = self.final = float(m.group(1))
            self.status = "balanced"
        elif line.startswith("No solution found"):
            self.final = self.initial
            self.status = "no solution"


def read_lines(fd: int, take_line) -> None:
    """Hand every line written to the pty behind fd to take_line until the writer is gone."""
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:             # EIO: the last writer closed its end
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            take_line(line.decode(errors="replace").rstrip("\r"))
    if pending:
        take_line(pending.decode(errors="replace").rstrip("\r"))


def run_hbal(tool: str, command: str, data_file: Path, timeout: float, extra_args: list[str]) -> HbalRun:
    """Run `command -t data_file`, reading its output as it comes; kill it after timeout seconds.

    Its stdout is a pty: to a pipe Ganeti's hbal buffers everything up to the first move
    line, so a run stopped before its first move would not even show its initial score.
    """
    run = HbalRun(tool=tool)
    master, slave = pty.openpty()
    started = time.monotonic()
    try:
        proc = subprocess.Popen([*shlex.split(command), "-t", str(data_file), *extra_args],
                                stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                                start_new_session=True)
    finally:
        os.close(slave)
    stderr_lines: list[str] = []

    def take_line(line: str) -> None:
        run.read_line(line, time.monotonic() - started)

    readers = [threading.Thread(target=read_lines, args=(master, take_line), daemon=True),
               threading.Thread(target=lambda: stderr_lines.extend(
                   line.decode(errors="replace") for line in proc.stderr), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)     # its own session: hbal and anything it started
        proc.wait()
        run.status = "timeout"
    run.seconds = time.monotonic() - started
    for reader in readers:
        reader.join(timeout=10)
    os.close(master)
    proc.stderr.close()
    run.returncode = proc.returncode
    run.stderr_tail = "".join(stderr_lines[-5:]).strip()
    if run.status != "timeout" and (proc.returncode != 0 or not run.status):
        run.status = f"error (rc={proc.returncode})"
    return run


# ---------------------------------------------------------------- report

def usage(cluster: Cluster) -> dict:
    nodes = cluster.nodes
    return {"memory": sum(n.t_mem - n.f_mem for n in nodes) / sum(n.t_mem for n in nodes),
            "disk": sum(n.used_disk for n in nodes) / sum(n.t_disk for n in nodes)}


def fmt_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def fmt_run(run: HbalRun | None) -> list[str]:
    if run is None:
        return ["–"] * 5
    if run.status == "timeout":
        took = f"timeout ({run.seconds:.0f} s)"
    else:
        took = f"{run.seconds:.1f} s" + ("" if run.status in ("done", "balanced", "no solution")
                                          else f" {run.status}")
    return [fmt_score(run.initial), fmt_score(run.final), str(run.moves), took]


def table(results: list[dict]) -> str:
    head = ["nodes", "instances", "initial (real)", "final (real)", "moves (real)", "time (real)",
            "initial (genet)", "final (genet)", "moves (genet)", "time (genet)"]
    rows = []
    for res in results:
        real = fmt_run(dataclass_or_none(HbalRun, res["real"]))[:4]
        genet = fmt_run(dataclass_or_none(HbalRun, res["genet"]))[:4]
        rows.append([str(res["nodes"]), str(res["instances"]), *real, *genet])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def dataclass_or_none(cls, value):
    return None if value is None else cls(**value)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_size(size: int, args, workdir: Path, genet_hbal: str | None) -> dict:
    cluster = generate(size, args.seed)
    data_file = workdir / f"cluster-{size}.data"
    data_file.write_text(to_text(cluster))
    used = usage(cluster)
    log(f"{size} nodes, {len(cluster.instances)} instances: {data_file} "
        f"(memory {used['memory']:.1%} used, disk {used['disk']:.1%})")
    extra = shlex.split(args.hbal_args)
    result = {"nodes": size, "instances": len(cluster.instances), "file": str(data_file),
              "usage": used, "real": None, "genet": None}
    runs = [("real", args.real_hbal, args.timeout)] if not args.skip_real else []
    if genet_hbal:
        runs.append(("genet", genet_hbal, args.genet_timeout))
    for tool, command, timeout in runs:
        log(f"  {tool} hbal (limit {timeout:g} s) ...")
        run = run_hbal(tool, command, data_file, timeout, extra)
        log(f"  {tool}: {run.status}, {run.moves} moves, {run.seconds:.1f} s")
        result[tool] = dataclasses.asdict(run)
    return result


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError("sizes are node counts of at least 2, comma-separated")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
                        help="node counts, comma-separated (default 20,200,1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generator (default 1)")
    parser.add_argument("--real-hbal", default=REAL_HBAL, help=f"command (default {REAL_HBAL})")
    parser.add_argument("--genet-hbal", default=GENET_HBAL,
                        help=f"command, e.g. '.venv/bin/python -m genet.htools.hbal' (default {GENET_HBAL})")
    parser.add_argument("--timeout", type=float, default=90, help="seconds for the real hbal (default 90)")
    parser.add_argument("--genet-timeout", type=float, default=180,
                        help="seconds for genet's hbal (default 180)")
    parser.add_argument("--hbal-args", default="", help="more arguments for both, e.g. --hbal-args=--no-disk-moves")
    parser.add_argument("--skip-real", action="store_true", help="run genet's hbal only")
    parser.add_argument("--keep", metavar="DIR", help="write the cluster files here and leave them")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    args = parser.parse_args()

    genet_hbal = args.genet_hbal if os.access(shlex.split(args.genet_hbal)[0], os.X_OK) else None
    if genet_hbal is None:
        log(f"note: {args.genet_hbal} does not exist (yet): genet's columns are left empty")
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
        results = [bench_size(size, args, workdir, genet_hbal) for size in args.sizes]
    else:
        with tempfile.TemporaryDirectory(prefix="genet-bench-htools-") as tmp:
            results = [bench_size(size, args, Path(tmp), genet_hbal) for size in args.sizes]

    if args.json:
        json.dump({"seed": args.seed, "timeout": args.timeout, "genet_timeout": args.genet_timeout,
                   "real_hbal": args.real_hbal, "genet_hbal": genet_hbal, "results": results},
                  sys.stdout, indent=1)
        print()
    else:
        print(table(results))
        for res in results:
            for tool in ("real", "genet"):
                run = res[tool]
                if run and run["status"] == "timeout" and run["last_move"]:
                    print(f"{res['nodes']} nodes, {tool}: last move before the limit "
                          f"({run['last_move_at']:.1f} s): {run['last_move']}")
                if run and run["status"] == "timeout" and not run["last_move"]:
                    print(f"{res['nodes']} nodes, {tool}: no move within the limit")
                if run and run["status"].startswith("error"):
                    print(f"{res['nodes']} nodes, {tool}: {run['status']}: {run['stderr_tail']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
