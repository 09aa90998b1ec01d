#!/usr/bin/env python3
"""hail on generated clusters: Ganeti 3.0.2's hail against genet's, the same requests side by side.

    .venv/bin/python bench/hail.py [--sizes 20,200,1000] [--seed 1] [--timeout 120] [--keep DIR]

For each size N it takes bench/htools.py's cluster of N nodes and 10 × N instances, gives every
node twice the memory and disk (so that new instances fit), writes IAllocator requests in
Ganeti's format (an allocation of a mirrored instance, a relocation of one's secondary, the
evacuation of a node's instances), and runs both hails on each, with Ganeti's global N+1
capacity checks and without them (--no-capacity-checks), each within a time limit. It prints,
per request, whether the answers are identical and each program's CPU time (a run that hits the
time limit is shown with the limit).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import htools as generated        # bench/htools.py, next to this script
from genet.htools import ialloc
from genet.htools.cluster import Instance

REAL = "/usr/lib/ganeti/3.0/usr/lib/ganeti/iallocators/hail"
GENET = str(Path(sys.executable).parent / "hail")


def requests(data) -> list[tuple[str, dict]]:
    new = Instance("new1", 1024, 10240, 1, "running", True, "", None, "drbd", [], 1, 1, disks=[(10240, 1)])
    mirrored = next(i for i in data.instances if i.template == "drbd")
    node = data.nodes[0].name
    on_node = [i.name for i in data.instances if node in (i.pnode, i.snode)]
    return [("allocate", {"type": "allocate", "name": "new1", "required_nodes": 2,
                          **ialloc.instance_dict(new, with_nodes=False)}),
            ("relocate", {"type": "relocate", "name": mirrored.name, "required_nodes": 1,
                          "relocate_from": [mirrored.snode]}),
            ("evacuate", {"type": "node-evacuate", "instances": on_node, "evac_mode": "all"})]


def run(program: str, args: list[str], timeout: float) -> tuple[str | None, float]:
    """The program's output and the CPU time it took (user and system: wall time says more about
    the machine's other load than about the program), None after ``timeout`` seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run([program, *args], capture_output=True, text=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired:
        return None, timeout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(out: str | None) -> str:
    if out is None:
        return "timed out"
    answer = json.loads(out)
    if not answer["success"]:
        return "failed"
    result = answer["result"]
    return ",".join(result) if isinstance(result[0], str) else f"{len(result[0])} moved, {len(result[1])} failed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,200,1000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--keep", metavar="DIR", help="keep the request files in DIR")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-hail-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{'nodes':>5} {'request':9} {'checks':6}  {'Ganeti hail':>24} {'cpu s':>7}  {'genet hail':>24} {'cpu s':>7}"
          "  same")
    for size in (int(s) for s in args.sizes.split(",")):
        data = generated.roomy(size, args.seed)
        data.hypervisor = "kvm"
        for name, request in requests(data):
            path = folder / f"{size}-{name}.json"
            path.write_text(json.dumps(ialloc.message(data, request)))
            for checks in ([], ["--no-capacity-checks"]):
                real, real_s = run(REAL, [*checks, str(path)], args.timeout)
                genet, genet_s = run(GENET, [*checks, str(path)], args.timeout)
                same = "-" if real is None or genet is None else ("yes" if real == genet else "NO")
                print(f"{size:>5} {name:9} {'off' if checks else 'on':6}  {summary(real)[:24]:>24} {real_s:7.1f}"
                      f"  {summary(genet)[:24]:>24} {genet_s:7.1f}  {same}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
