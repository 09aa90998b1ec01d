"""hroller: which nodes can reboot together, group by group (Ganeti's rolling-reboot planner).

Reads the cluster (-t FILE, -L, -m), keeps the online nodes the options select, colours their
conflict graph (graph.py) and splits each colour into groups whose non-redundant instances
(and with --full-evacuation, whose secondaries) fit on other nodes meanwhile (reboot.py).
Prints the groups, largest first and the master's last, with the moves (--print-moves).
"""
from __future__ import annotations

import sys

from genet.htools import graph, loader, options, reboot, text
from genet.htools.nodevals import INDEX

OPTION_NAMES = ["luxi", "master", "text_data", "ialloc_src", "offline", "offline_maintenance", "verbose", "quiet", "no_headers",
                "node_tags", "save", "group", "print_moves", "full_evacuation", "skip_non_redundant",
                "ignore_non_redundant", "force", "one_step_only", "static_kvm_node_memory"]


def build_parser():
    return options.build_parser("hroller", "Cluster rolling maintenance scheduler for genet (Ganeti's hroller).",
                                OPTION_NAMES)


def _parse(argv):
    """The options; an unknown option is a usage error, an argument is refused as Ganeti does."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    end = rest.index("--") if "--" in rest else len(rest)        # what follows "--" is arguments
    unknown = [a for a in rest[:end] if a.startswith("-")]
    rest = rest[:end] + rest[end + 1:]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if rest:
        loader.fail("This program doesn't take any arguments.")
    return args


def _check_master(data, force: bool) -> None:
    masters = [n.name for n in data.nodes if n.master]
    if len(masters) > 1:
        loader.fail(f"Found more than one master node: {text.hs_show(masters)}")
    if not masters:
        message = "No master node found (maybe not supported by backend)."
        if not force:
            loader.fail(message)
        print(f"Warning: {message}", file=sys.stderr)


def _wanted_group(data, name: str | None) -> int | None:
    if name is None:
        return None
    hits = [gi for gi, g in enumerate(data.groups) if name in (g.name, g.uuid)]
    if len(hits) != 1:
        loader.fail("Cannot find target group.")
    return hits[0]


def _selected_nodes(st, conf: reboot.Conf, args, group: int | None) -> list[int]:
    """The online nodes the options keep: without non-redundant instances (--skip-non-redundant),
    with one of the tags (--node-tags), in the group (-G)."""
    out = []
    for k in range(len(st.node_names)):
        if st.F[INDEX["offline"], k] or (args.skip_non_redundant and conf.non_redundant(k)):
            continue
        if args.node_tags is not None and not set(st.node_tags[k]) & set(args.node_tags):
            continue
        if group is not None and st.node_group[k] != group:
            continue
        out.append(k)
    return out


def conflict_graph(st, conf: reboot.Conf, nodes: list[int], offline_maintenance: bool) -> graph.Graph | None:
    pairs = [(i.pnode, i.snode) for i in st.instances if i.has_secondary]
    if offline_maintenance:
        edges = graph.instance_edges(pairs)
    else:
        edges = graph.reboot_edges(pairs, [[st.instances[i].pnode for i in room.sec] for room in conf.nodes])
    return graph.Graph.build(nodes, edges)


def plan(st, args, conf: reboot.Conf, nodes: list[int]) -> tuple[list, list[tuple[list[int], reboot.Conf]]]:
    """The colourings of the nodes' conflict graph and the reboot groups, each with the plan
    while it reboots."""
    g = conflict_graph(st, conf, nodes, args.offline_maintenance)
    if g is None:
        loader.fail("Cannot create node graph")
    if options.verbosity(args) > 2:
        print(f"Node Graph: {g}")
    results = graph.colourings(g)
    colours = graph.smallest(results)
    targets = [k for k in range(len(st.node_names)) if not st.F[INDEX["offline"], k]]
    if args.ignore_non_redundant:
        groups = [(c, conf) for c in colours]
    else:
        groups = []
        for c in colours:
            split = reboot.split_non_redundant(conf, c, targets)
            if split is None:
                loader.fail("Not enough capacity to move non-redundant instances")
            groups += split
    if args.full_evacuation:
        migrated = [(members, reboot.migrate_off(c, members)) for members, c in groups]
        if any(c is None for _, c in migrated):
            loader.fail("Failed to migrate instances off nodes")
        groups = []
        for members, c in migrated:
            split = reboot.split_secondaries(c, members, targets)
            if split is None:
                loader.fail("Not enough capacity to move secondaries")
            groups += split
    return results, groups


def _ordered(st, groups, selected: set[int]):
    """The groups' selected nodes, largest group first, the master's group last with the master
    last in it."""
    shown = [([n for n in nodes if n in selected], c) for nodes, c in groups]
    shown.sort(key=lambda g: -len(g[0]))
    split = [([n for n in nodes if not st.master[n]], [n for n in nodes if st.master[n]], c) for nodes, c in shown]
    return ([(others + masters, c) for others, masters, c in split if not masters] +
            [(others + masters, c) for others, masters, c in split if masters])


def reboot_groups(data, group: str, full_evacuation: bool = False) -> list[list[str]]:
    """The nodes of ``group`` as ``hroller -G GROUP`` prints them (gnt-group maintenance):
    one list of names per reboot group, in order."""
    argv = ["-G", group] + (["--full-evacuation"] if full_evacuation else [])
    args = _parse(argv)
    st = loader.build_state(data, args, verbose=0)
    _, _, ordered = _reboot_plan(st, data, args)
    return [[st.node_names[n] for n in nodes] for nodes, _ in ordered]


def _reboot_plan(st, data, args):
    """The cluster before, the colourings and the reboot groups in hroller's order, each with its plan."""
    before = reboot.Conf.from_state(st)
    selected = _selected_nodes(st, before, args, _wanted_group(data, args.group))
    results, groups = plan(st, args, before, selected)
    return before, results, _ordered(st, groups, set(selected))


@options.entry
def main(argv=None) -> int:
    args = _parse(argv)
    verbose = options.verbosity(args)
    data = loader.read_cluster(args)
    st = loader.build_state(data, args, verbose, node_status=False)
    _check_master(data, args.force)
    loader.set_node_status(st, args)
    loader.save_cluster(args.save, "original", "before hroller run", data)
    before, results, ordered = _reboot_plan(st, data, args)
    if verbose > 1:
        print(graph.stats(results))
    if args.one_step_only:
        if not args.no_headers:
            print("'First Reboot Group'")
        ordered = ordered[:1]
    elif not args.no_headers:
        print("'Node Reboot Groups'")
    for nodes, conf in ordered:
        names = [st.node_names[n] for n in nodes]
        print("".join(f"{n}\n" for n in names) if args.one_step_only else ",".join(names) + "\n", end="")
        if args.print_moves:
            for inst, pnode, snode in reboot.moves(before, conf):
                print(f"  {inst} {pnode}" + (f" {snode}" if snode is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
