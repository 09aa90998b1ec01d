"""hscan: save clusters' state to htools text files, with a one-line summary of each.

Reads each cluster named on the command line through its RAPI (as hbal -m does), or the local
master daemon when none is named (the cluster is then called LOCAL), prints its nodes,
instances, N+1 failures, memory, disk and score, and writes DIR/NAME.data in Ganeti's text
format: what hbal, hspace and hail read with -t, genet's and Ganeti's alike.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from genet.htools import display, options, text
from genet.htools.loader import HtoolsError
from genet.htools.metrics import GroupScore
from genet.htools.nodevals import INDEX
from genet.htools.state import State

OPTION_NAMES = ["print_nodes", "output_dir", "luxi", "verbose", "no_headers", "static_kvm_node_memory"]
LOCAL = "LOCAL"


def build_parser():
    parser = options.build_parser("hscan", "Scan clusters and save their state for the htools (Ganeti's hscan).",
                                  OPTION_NAMES)
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER", help="RAPI address of a cluster")
    return parser


def summary(st: State, f_mem: list[int]) -> str:
    """Nodes, instances, N+1-failing nodes and their instances, memory, disk, score."""
    nodes = np.arange(len(st.node_names))
    score = GroupScore(st, nodes)
    bad, bad_insts = st.n1_failures(score.online)
    t_mem, t_dsk = st.F[INDEX["t_mem"]].sum(), st.F[INDEX["t_dsk"]].sum()
    f_dsk = int(st.F[INDEX["f_dsk"]].sum())
    return (f"{len(nodes):5d} {len(st.instances):5d} {len(bad):5d} {len(bad_insts):5d} {t_mem:6.0f} "
            f"{sum(f_mem):6d} {t_dsk / 1024:6.0f} {f_dsk // 1024:6d} {score.total():.8f}")


def scan(name: str, args, width: int) -> bool:
    try:
        if name == LOCAL:
            from genet.htools import live
            data = live.read(live.client_for(args))
        else:
            from genet.htools import rapi_backend
            data = rapi_backend.load(name)
        st = State(data, static_node_mem=args.static_kvm_node_memory)
    except (HtoolsError, OSError, KeyError, ValueError) as err:
        print(f"\nError for {name}: failed to load data. Details:\n{err}")
        return False
    print(f"{name:<{width}} ", end="", flush=True)
    print(summary(st, [n.f_mem for n in data.nodes]), flush=True)
    if args.print_nodes is not None:
        aliases = list(st.node_names)
        print(display.node_table(st, range(len(aliases)), args.print_nodes, aliases,
                                 [n.f_mem for n in data.nodes]), end="")
    with open(os.path.join(args.output_dir, name.replace("/", "_") + ".data"), "w", encoding="utf-8") as f:
        f.write(text.serialize(data))
    return True


@options.entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    names = args.clusters or [LOCAL]
    if not args.clusters:
        args.luxi = args.luxi or ""
    width = max(len(n) for n in names)
    if not args.no_headers:
        print(f"{'Name':<{width}} {'Nodes':>5} {'Inst':>5} {'BNode':>5} {'BInst':>5} {'t_mem':>6} {'f_mem':>6} "
              f"{'t_disk':>6} {'f_disk':>6} {'Score':>10}")
    results = [scan(name, args, width) for name in names]
    return 0 if all(results) else 2


if __name__ == "__main__":
    sys.exit(main())
