"""hbal: the cluster balancer, with Ganeti's options, output and command list.

Reads the cluster (-t FILE, -L, -m), picks the node group, prints the initial score, moves
instances one at a time to the move that lowers the score most until no move gains enough,
prints every move, the final score and the commands (-C) that carry the solution out; with -X
it submits them as jobs, each set of moves that touch different nodes in parallel.
"""
from __future__ import annotations

import sys
from dataclasses import replace

from genet.htools import display, loader, metrics, options
from genet.htools.balance import Balancer, Options
from genet.htools.nodevals import INDEX, unallocated_mem
from genet.htools.state import NO_NODE, State

OPTION_NAMES = ["print_nodes", "print_instances", "print_commands", "text_data", "ialloc_src", "evac_mode",
                "restricted_migration", "master", "luxi", "exec", "first_job_group", "reason", "group",
                "max_length", "verbose", "quiet", "offline", "static_kvm_node_memory", "min_score", "max_cpu",
                "min_disk", "min_gain", "min_gain_limit", "no_disk_moves", "select_instances",
                "no_instance_moves", "ignore_soft_errors", "dynu_file", "ignore_dynu", "mond", "mond_data",
                "exit_on_missing_mond_data", "exclusion_tags",
                "exclude_instances", "save", "priority"]


def build_parser():
    return options.build_parser("hbal", "Cluster balancer for genet (Ganeti's hbal).", OPTION_NAMES)


def _select_group(st: State, name: str | None):
    groups = st.groups_nodes()
    gnames = [g.name for g in st.data.groups]
    if len(groups) > 1 and name is None:
        print("Found multiple node groups:", file=sys.stderr)
        for gi, _ in groups:
            print(f"  {gnames[gi]}", file=sys.stderr)
        loader.fail("Aborting.")
    if name is None:
        gi, members = groups[0]
        return gnames[gi], members
    for gi, g in enumerate(st.data.groups):
        if name in (g.name, g.uuid):
            return g.name, dict(groups).get(gi, [])
    print(f"Node group {name} not found. Node group list is:", file=sys.stderr)
    for g in gnames:
        print(f"  {g}", file=sys.stderr)
    loader.fail("Aborting.")


def placed(data, st: State, insts=None):
    """The cluster data with the instances where ``st`` has them now (for -S); ``insts`` are
    the state's instances in the order of ``data.instances`` when not all of them."""
    insts = [replace(i, pnode=st.node_names[x.pnode], snode=st.node_names[x.snode] if x.snode != NO_NODE else None)
             for i, x in zip(data.instances, st.instances if insts is None else insts)]
    nodes = [replace(n, f_dsk=int(st.F[INDEX["f_dsk"], k]), free_spindles=int(st.F[INDEX["f_sp"], k]),
                     n_mem=int(st.F[INDEX["n_mem"], k])) for k, n in enumerate(data.nodes)]
    return replace(data, nodes=nodes, instances=insts)


@options.entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    verbose = options.verbosity(args)
    data = loader.read_cluster(args)
    if verbose > 1:
        print("Loaded cluster tags: " + ",".join(data.tags))
        print("Loaded cluster ipolicy: " + display.hs_policy(data.ipolicy), flush=True)
    st = loader.build_state(data, args, verbose)
    if not st.instances:
        print("Cluster is empty, exiting.")
        return 0
    split = [i.name for i in st.instances if i.snode != NO_NODE and st.node_group[i.pnode] != st.node_group[i.snode]]
    if split and verbose > 1:
        print("Found instances belonging to multiple node groups:", file=sys.stderr)
        for name in split:
            print(f"  {name}", file=sys.stderr)
        print("These instances will not be moved.", file=sys.stderr)
    print(f"Loaded {len(st.node_names)} nodes, {len(st.instances)} instances")
    suffix = loader.common_suffix(st.node_names + [i.name for i in st.instances])
    if suffix and verbose > 1:
        print(f"Note: Stripping common suffix of '{suffix}' from names")
    aliases = loader.aliases(st)
    loader.save_cluster(args.save, "original", "before balancing", data)
    gname, members = _select_group(st, args.group)
    group_insts = st.group_instances(members) if len(members) else []
    print(f"Group size {len(members)} nodes, {len(group_insts)} instances")
    print(f"Selected node group: {gname}")
    bal = Balancer(st, members, balancer_options(args))
    _check_group(st, bal, group_insts, verbose, args.ignore_soft_errors)
    f_mem = [n.f_mem for n in data.nodes]
    _print_tables(args, st, group_insts, members, aliases, f_mem, "Initial")
    ini = bal.score.total()
    ini_free = _free(st, members)
    optimum = metrics.optimal_score(st, members)
    if verbose > 2:
        print(f"Initial coefficients: overall {ini:.8f}\n" + display.score_table(bal.score.values()), end="")
    else:
        print(f"Initial score: {ini:.8f}")
    if ini - optimum < args.min_score:
        print(f"Cluster is already well balanced (initial score {display.hs_g(ini)},\n"
              f"optimum score due to N+1 reservations {display.hs_g(optimum)},\n"
              f"minimum score {display.hs_g(args.min_score)}).\nNothing to do, exiting")
        return 0
    print("Trying to minimize the CV...")
    imlen = max((len(i.alias) for i in group_insts), default=0)
    nmlen = max((len(aliases[int(n)]) for n in members), default=0)
    moves_done = []

    def report(step, pos):
        line, cmds = display.solution_line(step, pos, aliases, imlen, nmlen)
        print(line, flush=True)
        moves_done.append((display.involved_nodes(step), cmds))
    steps = bal.run(args.max_length, optimum + args.min_score, report)
    fin = bal.score.total()
    if not steps:
        print("No solution found")
    elif verbose > 2:
        print(f"Final coefficients:   overall {fin:.8f}\n" + display.score_table(bal.score.values()), end="")
    else:
        print(f"Cluster score improved from {ini:.8f} to {fin:.8f}")
    if verbose >= 1:
        print(f"Solution length={len(steps)}")
    sets = display.job_sets(moves_done)
    if args.first_job_group:
        sets = sets[:1]
    _print_commands(args.print_commands, "First set of jobs:" if args.first_job_group
                    else "Commands to run to reach the above solution:", display.format_commands(sets))
    loader.save_cluster(args.save, "balanced", "after balancing", placed(data, st))
    _print_tables(args, st, group_insts, members, aliases, f_mem, "Final")
    if verbose > 3:
        print(f"Original: mem={ini_free[0]} disk={ini_free[1]}")
        print(f"Final:    mem={_free(st, members)[0]} disk={_free(st, members)[1]}")
    if args.exec and steps:
        from genet.htools import execute
        return execute.run_jobs(args, st, steps)
    return 0


def balancer_options(args) -> Options:
    """The balancing options hbal's command line sets (Ganeti's fromCLIOptions); hcheck's
    simulation balances with the same ones."""
    return Options(disk_moves=not args.no_disk_moves, instance_moves=not args.no_instance_moves,
                   restricted_migration=getattr(args, "restricted_migration", False),
                   ignore_soft_errors=args.ignore_soft_errors, evac_mode=args.evac_mode,
                   min_gain=args.min_gain, min_gain_limit=args.min_gain_limit)


def _print_tables(args, st: State, insts, members, aliases, f_mem, when: str) -> None:
    """--print-instances and -p: the instance map and the node table, on standard error."""
    if args.print_instances:
        print(f"\n{when} instance map:", file=sys.stderr)
        sys.stderr.write(display.instance_table(st, insts, st.node_names))
    if args.print_nodes is not None:
        print(f"\n{when} cluster status:", file=sys.stderr)
        print(display.node_table(st, members, args.print_nodes, aliases, f_mem), file=sys.stderr)


def _free(st: State, members) -> tuple[int, int]:
    """The group's unallocated memory and free disk (Ganeti's csFmem, csFdsk)."""
    v = st.vals(members)
    return int(unallocated_mem(v).sum()), int(st.F[INDEX["f_dsk"], members].sum())


def _check_group(st: State, bal: Balancer, insts, verbose: int, force: bool) -> None:
    """Ganeti's checkGroup: N+1 failures and nodes that break their policy, before balancing."""
    F = st.F
    bad_nodes, bad_insts = st.n1_failures(bal.score.online)
    if verbose >= 1:
        print(f"Initial check done: {len(bad_nodes)} bad nodes, {len(bad_insts)} bad instances.")
    others = [int(n) for n in bal.members if int(n) not in bad_nodes]
    health = {n: "Bad FailDisk" if F[INDEX["inst_sp"], n] > F[INDEX["hi_sp"], n]
              else "Bad FailCPU" if F[INDEX["u_cpu"], n] / F[INDEX["t_cpu"], n] > F[INDEX["l_cpu"], n]
              else "Ok ()" for n in others}
    policy_bad = [n for n in others if health[n] != "Ok ()"]
    if verbose > 4:
        def names(nodes):
            return "[" + ",".join(f'"{st.node_names[n]}"' for n in nodes) + "]"
        print(f"Bad nodes: {names(bad_nodes)}")
        print(f"N+1 happy nodes: {names(others)}")
        print("Node policy status: [" + ",".join(f'("{st.node_names[n]}",{health[n]})' for n in others) + "]")
    if bad_nodes:
        print("Cluster is not N+1 happy, continuing but no guarantee that the cluster will end N+1 happy.")
    if policy_bad:
        print(f"The cluster contains {len(policy_bad)} policy-violating nodes.")
        print("Continuing, ignoring soft errors." if force else
              "Continuing, but the set of moves might be too restricted; consider using the "
              "--ignore-soft-errors option.")


def _print_commands(target: str | None, title: str, cmds: str) -> None:
    if target is None:
        return
    if target == "-":
        print()
        print(title)
        print("".join(f"  {line}\n" for line in cmds.splitlines() if line != "  check"), end="")
        return
    with open(target, "w", encoding="utf-8") as f:
        f.write(display.SH_TEMPLATE + cmds)
    print(f"The commands have been written to file '{target}'")


if __name__ == "__main__":
    sys.exit(main())
