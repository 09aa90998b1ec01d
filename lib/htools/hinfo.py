"""hinfo: a cluster's state at a glance, per node group: N+1 failures and the score.

Ganeti's hinfo, same output: the loaded counts, instances split across groups, each group's
nodes, instances, N+1-failing nodes and their instances and score (-v -v), whether the whole
cluster is N+1 happy, the score's components and the cluster's score.
"""
from __future__ import annotations

import sys

import numpy as np

from genet.htools import display, loader, options
from genet.htools.metrics import GroupScore
from genet.htools.state import NO_NODE

OPTION_NAMES = ["print_nodes", "print_instances", "text_data", "ialloc_src", "master", "luxi", "verbose", "quiet", "offline",
                "ignore_dynu", "mond", "mond_data", "static_kvm_node_memory"]


def build_parser():
    return options.build_parser("hinfo", "Cluster information for genet (Ganeti's hinfo).", OPTION_NAMES)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@options.entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    verbose = options.verbosity(args)
    data = loader.read_cluster(args)
    print("Loaded cluster tags: " + ",".join(data.tags), flush=True)
    if verbose > 2:
        print("Loaded cluster ipolicy: " + display.hs_policy(data.ipolicy))
    st = loader.build_state(data, args, verbose)
    if not st.instances and verbose > 1:
        print("Cluster is empty.")
    print(f"Loaded {_plural(len(st.node_names), 'node', 'nodes')}, "
          f"{_plural(len(st.instances), 'instance', 'instances')}, "
          f"{_plural(len(data.groups), 'node group', 'node groups')}")
    suffix = loader.common_suffix(st.node_names + [i.name for i in st.instances])
    if suffix and verbose > 2:
        print(f"Note: Stripping common suffix of '{suffix}' from names")
    split = [i.name for i in st.instances if i.snode != NO_NODE and st.node_group[i.pnode] != st.node_group[i.snode]]
    if split:
        print("Found instances belonging to multiple node groups:")
        for name in split:
            print(f"  {name}", file=sys.stderr)
    elif verbose > 1:
        print("No split instances found")
    rows, happy = [], True
    for gi, members in st.groups_nodes():
        score = GroupScore(st, members)
        bad, bad_insts = st.n1_failures(score.online)
        happy = happy and not bad
        rows.append([data.groups[gi].name, str(len(members)), str(len(st.group_instances(members))),
                     str(len(bad)), str(len(bad_insts)), str(not bad), f"{score.total():.8f}"])
    if verbose > 1:
        print("Node group information:")
        print(display.table(["Group", "Nodes", "Instances", "Bad_Nodes", "Bad_Instances", "N+1", "Score"], rows,
                            [False, True, True, True, True, False, True], "  "), end="")
    print(f"Cluster is N+1 {'happy' if happy else 'unhappy'}")
    everything = np.arange(len(st.node_names))
    names = loader.aliases(st)
    if args.print_instances:
        print("\nInstances instance map:", file=sys.stderr)
        sys.stderr.write(display.instance_table(st, st.instances, st.node_names))
    if args.print_nodes is not None:
        print("\nCluster status:", file=sys.stderr)
        print(display.node_table(st, everything, args.print_nodes, names, [n.f_mem for n in data.nodes]),
              file=sys.stderr)
    whole = GroupScore(st, everything)
    print("Cluster coefficients:\n" + display.score_table(whole.values()), end="")
    print(f"Cluster score: {whole.total():.8f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
