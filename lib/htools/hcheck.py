"""hcheck: is the cluster healthy, and would rebalancing help? Ganeti's hcheck, same output.

For every node group it counts the nodes that fail N+1, the nodes with conflicting primaries
(exclusion tags), the instances on offline nodes, the nodes that could not be evacuated
(global N+1, unless --no-capacity-checks) and the group's score; the cluster's counts are the
groups' sums, and any non-zero count means the cluster needs rebalancing. Then, unless
--no-simulation, it balances every group as hbal would (hbal's options) and counts again.
It exits 1 when the cluster needs rebalancing and that was simulated.
"""
from __future__ import annotations

import sys

import numpy as np

from genet.htools import loader, metrics, options
from genet.htools.balance import Balancer
from genet.htools.globaln1 import evacuable
from genet.htools.hbal import balancer_options
from genet.htools.metrics import GroupScore
from genet.htools.state import State

OPTION_NAMES = ["text_data", "no_disk_moves", "dynu_file", "ignore_dynu", "evac_mode", "exclude_instances",
                "exclusion_tags", "ialloc_src", "no_instance_moves", "luxi", "machine_readable", "max_cpu",
                "max_length", "min_disk", "min_gain", "min_gain_limit", "min_score", "ignore_soft_errors",
                "no_simulation", "offline", "quiet", "master", "select_instances", "no_capacity_checks",
                "verbose"]

PREFIX = "HCHECK"
# (machine-readable key, human-readable description) of the counts, in Ganeti's order; the
# global N+1 one only with capacity checks
COUNTS = [("N1_FAIL", "Nodes not N+1 happy"), ("CONFLICT_TAGS", "Nodes with conflicting instances"),
          ("OFFLINE_PRI", "Instances having the primary node offline"),
          ("OFFLINE_SEC", "Instances having a secondary node offline")]
GN1_COUNT = ("GN1_FAIL", "Nodes not directly evacuateable")
GROUP_EXTRA = ("SCORE", "Group score")
CLUSTER_EXTRA = ("NEED_REBALANCE", "Cluster is not healthy")
PHASES = {"INIT": "initially", "FINAL": "after rebalancing"}


def build_parser():
    parser = options.build_parser("hcheck", "Cluster checker for genet (Ganeti's hcheck).", OPTION_NAMES)
    # no option for it, but the node memory of KVM nodes read live is counted as Ganeti's default
    parser.set_defaults(static_kvm_node_memory=options.OPTIONS["static_kvm_node_memory"][1]["default"])
    return parser


def counts(capacity: bool) -> list[tuple[str, str]]:
    return COUNTS + ([GN1_COUNT] if capacity else [])


def group_stats(st: State, members: np.ndarray, capacity: bool) -> tuple[list[int], float]:
    """A group's counts (Ganeti's perGroupChecks) and its score."""
    score = GroupScore(st, members)
    offline = score.offline_nodes
    bad, _ = st.n1_failures(score.online)
    conflicting = int((st.tag_conflicts(members) > 0).sum()) if len(members) else 0
    off = set(offline.tolist())
    offline_pri = sum(1 for i in st.instances if i.pnode in off and not i.forthcoming)
    # Ganeti counts the offline nodes here, not their secondaries
    stats = [len(bad), conflicting, offline_pri, len(offline)]
    if capacity:
        stats.append(sum(1 for ok in evacuable(st, members) if not ok))
    return stats, score.total()


def simulate(st: State, members: np.ndarray, args) -> None:
    """Balance the group as hbal would (Ganeti's maybeSimulateGroupRebalance), in place."""
    ini = GroupScore(st, members).total()
    target = args.min_score + metrics.optimal_score(st, members)
    if ini >= target:
        Balancer(st, members, balancer_options(args)).run(args.max_length, target)


def _quoted(value: str) -> str:
    """Ganeti's ensureQuoted: single quotes unless all letters, digits and dots."""
    return value if all(c.isalnum() or c == "." for c in value) else f"'{value}'"


def print_keys(pairs) -> None:
    for key, value in pairs:
        print(f"{PREFIX}_{key.upper()}={_quoted(value)}")


def print_stats(args, verbose: int, level: str | None, phase: str, described, values: list[str]) -> None:
    """One block of counts: ``level`` is the group (its index, or its name when human-readable)
    or None for the cluster."""
    if args.machine_readable:
        where = "CLUSTER" if level is None else f"GROUP_{level}"
        print_keys((f"{phase}_{where}_{key}", v) for (key, _), v in zip(described, values))
    elif verbose >= 1:
        print()
        print(f"Cluster statistics {PHASES[phase]}" if level is None
              else f"Statistics for group {level} {PHASES[phase]}")
        for (_, text), v in zip(described, values):
            print(f"    {text}: {v}")


def check(st: State, groups, capacity: bool) -> list[tuple[int, list[int], float]]:
    """(group index, counts, score) of every group with nodes."""
    return [(gi, *group_stats(st, members, capacity)) for gi, members in groups]


def report(args, verbose: int, st: State, checked, phase: str, need: bool) -> None:
    """Every group's block, then the cluster's (the groups' sums)."""
    described = counts(not args.no_capacity_checks)
    for gi, stats, score in checked:
        level = str(gi) if args.machine_readable else st.data.groups[gi].name
        print_stats(args, verbose, level, phase, described + [GROUP_EXTRA],
                    [str(s) for s in stats] + [f"{score:.8f}"])
    # no group with nodes: no sums at all, and the flag lands on the first line, as in Ganeti
    total = [sum(col) for col in zip(*(stats for _, stats, _ in checked))]
    flag = ("1" if need else "0") if args.machine_readable else str(need)
    print_stats(args, verbose, None, phase, described + [CLUSTER_EXTRA], [str(s) for s in total] + [flag])


@options.entry
def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if any(e.startswith("-") for e in extra):
        parser.parse_args(argv)                 # an unknown option: the usage error, status 2
    if extra:
        loader.fail("This program doesn't take any arguments.")
    verbose = options.verbosity(args)
    capacity = not args.no_capacity_checks
    data = loader.read_cluster(args)
    st = loader.build_state(data, args, verbose)
    groups = st.groups_nodes()
    if args.machine_readable:
        print_keys((f"GROUP_UUID_{gi}", g.uuid) for gi, g in enumerate(data.groups))
    initial = check(st, groups, capacity)
    need = any(sum(stats) > 0 for _, stats, _ in initial)
    if verbose >= 1 and not args.machine_readable:
        print("Running in no-simulation mode." if args.no_simulation else
              "Cluster needs rebalancing." if need else "No need to rebalance cluster, no problems found.")
    report(args, verbose, st, initial, "INIT", need)
    simulated = need and not args.no_simulation
    if simulated:
        for _, members in groups:
            simulate(st, members, args)
    if simulated or args.machine_readable:
        # Ganeti's hcheck reports the initial need again after the simulation
        final = check(st, groups, capacity) if simulated else initial
        report(args, verbose, st, final, "FINAL", need)
    if args.machine_readable:
        print_keys([("OK", "1")])
    return 1 if simulated else 0


if __name__ == "__main__":
    sys.exit(main())
