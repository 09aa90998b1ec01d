#!/usr/bin/env python3
"""genet's hspace against Ganeti's hspace 3.0.2 on generated clusters: how many instances each
plans (tiered and standard) and how long it takes.

The clusters are bench/htools.py's (deterministic for a size and seed) with twice the memory
and disk on every node, so that instances fit (generated clusters are full and fail N+1, where
hspace plans nothing). Each program gets a time limit; one that runs out is reported so.

    .venv/bin/python bench/hspace.py [--sizes 20,200,1000] [--timeout 600] [--no-capacity-checks]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import htools as generated        # bench/htools.py, next to this script

REAL = "/usr/lib/ganeti/3.0/usr/bin/hspace"
GENET = str(Path(sys.executable).parent / "hspace")


def roomy_text(nodes: int, seed: int) -> str:
    from genet.htools import text
    return text.serialize(generated.roomy(nodes, seed))


def run(program: str, path: Path, timeout: float, extra: list[str]) -> tuple[str, dict]:
    start = time.monotonic()
    try:
        out = subprocess.run([program, "-t", str(path), "--machine-readable", *extra], capture_output=True,
                             text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timeout ({timeout:.0f} s)", {}
    took = time.monotonic() - start
    keys = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return (f"{took:.1f} s" if out.returncode == 0 else f"exit {out.returncode}"), keys


def tiered_count(keys: dict) -> int:
    spec = keys.get("HTS_TSPEC", "").strip("'")
    return sum(int(part.rsplit("=", 1)[1]) for part in spec.split()) if spec else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,1000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--no-capacity-checks", action="store_true")
    args = parser.parse_args()
    extra = ["--no-capacity-checks"] if args.no_capacity_checks else []
    print(f"{'nodes':>5}  {'program':7}  {'tiered':>6}  {'standard':>8}  time")
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in [int(s) for s in args.sizes.split(",")]:
            path = Path(tmp) / f"roomy-{nodes}.data"
            path.write_text(roomy_text(nodes, args.seed))
            results = {}
            for name, program in (("ganeti", REAL), ("genet", GENET)):
                took, keys = run(program, path, args.timeout, extra)
                results[name] = keys
                print(f"{nodes:5d}  {name:7}  {tiered_count(keys) if keys else '-':>6}  "
                      f"{keys.get('HTS_ALLOC_INSTANCES', '-'):>8}  {took}", flush=True)
            if results["ganeti"] and results["genet"]:
                print(f"{'':5}  same output: {results['ganeti'] == results['genet']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
