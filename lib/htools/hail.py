"""hail: the IAllocator (Ganeti's hail) — reads a request, writes where instances go.

genet's masterd runs it in-process for ``-I hail`` (and as the default allocator); as a program
it answers Ganeti's requests the way Ganeti's hail does, so either can serve either cluster.
"""
from __future__ import annotations

import sys
from dataclasses import replace

from genet.htools import alloc, dedicated, display, evacuate, ialloc, loader, options, text
from genet.htools.hbal import placed
from genet.htools.state import NO_NODE, State

OPTION_NAMES = ["print_nodes", "save", "text_data", "verbose", "ignore_dynu", "ignore_soft_errors",
                "no_capacity_checks", "restrict_allocation_to", "static_kvm_node_memory"]


def build_parser():
    parser = options.build_parser("hail", "Ganeti's IAllocator: answer an allocation request",
                                  OPTION_NAMES)
    parser.add_argument("input", nargs="*", help="the request file ('-' for standard input)")
    return parser


def defaults(args=()):
    """hail's options as masterd runs it in-process: the nodes' memory as they report it, then
    ``args`` (the cluster's iallocator parameters)."""
    return build_parser().parse_args(["--static-kvm-node-memory=0", *args, "-"])


def algorithm_options(args) -> alloc.Options:
    return alloc.Options(ignore_soft_errors=args.ignore_soft_errors, capacity=not args.no_capacity_checks,
                         restrict_to=args.restrict_allocation_to)


def answer(st: State, request: ialloc.Request, opts: alloc.Options) -> tuple[bool, str, object]:
    """Ganeti's processRequest and formatIAllocResult: success, info and result."""
    try:
        info, result = _process(st, request, opts)
    except (alloc.AllocError, evacuate.EvacError) as err:
        return False, f"Request failed: {err}", []
    return True, f"Request successful: {info}", result


def is_dedicated(st: State, rq: ialloc.Request) -> bool:
    """Whether an allocation request is answered with the lost-allocations metric (Ganeti's
    dedicated allocation: every node it may use has exclusive storage)."""
    return rq.kind in ("allocate", "multi-allocate") and dedicated.is_dedicated(st, rq.group)


def _process(st: State, rq: ialloc.Request, opts: alloc.Options):
    lost_allocations = is_dedicated(st, rq)
    if rq.kind == "allocate":
        if rq.restrict_to is not None and opts.restrict_to is None:
            opts = replace(opts, restrict_to=list(rq.restrict_to))
        if lost_allocations:
            inst = st.new_instance(rq.instances[0])
            sol = dedicated.allocate(st, inst, rq.required_nodes[0], opts, rq.group)
        else:
            inst, sol = alloc.allocate(st, rq.instances[0], rq.required_nodes[0], opts, rq.group)
        info = ", ".join(sol.log)
        if sol.nodes is None:
            raise alloc.AllocError(info)
        alloc.place(st, inst, sol.nodes, opts.ignore_soft_errors)
        return info, [st.node_names[n] for n in sol.nodes]
    if rq.kind == "multi-allocate":
        requests = [(r, c, rq.group) for r, c in zip(rq.instances, rq.required_nodes)]
        done = (dedicated.allocate_list if lost_allocations else alloc.allocate_list)(st, requests, opts)
        good = [[inst.name, [st.node_names[n] for n in sol.nodes]] for inst, sol in done if sol.nodes is not None]
        bad = [[inst.name, ", ".join(sol.log)] for inst, sol in done if sol.nodes is None]
        return (f"{len(bad)} instances failed to allocate and {len(good)} were allocated successfully",
                [good, bad])
    if rq.kind == "allocate-secondary":
        inst, sol = evacuate.allocate_secondary(st, st.instance_index[rq.instances[0]], opts)
        return ", ".join(sol.log), st.node_names[sol.nodes[1]]
    if rq.kind == "relocate":
        return "success", evacuate.relocate(st, st.instance_index[rq.instances[0]], rq.required_nodes[0],
                                            rq.relocate_from, opts)
    idxs = [st.instance_index[name] for name in rq.instances]
    if rq.kind == "change-group":
        sol = evacuate.change_group(st, idxs, rq.target_groups, opts)
    else:
        sol = evacuate.node_evacuate(st, idxs, rq.evac_mode, opts)
    return (f"{len(sol.failed)} instances failed to move and {len(sol.moved)} were moved successfully",
            sol.result(st))


def _save(path: str | None, ext: str, what: str, data) -> None:
    if path:
        out = f"{path}.{ext}"
        with open(out, "w", encoding="utf-8") as f:
            f.write(text.serialize(data))
        print(f"The cluster state {what} has been written to file '{out}'", file=sys.stderr)


def _print_nodes(args, st: State, data, when: str) -> None:
    if args.print_nodes is not None:
        aliases = loader.aliases(st)
        print(f"\n{when} cluster status:", file=sys.stderr)
        print(display.node_table(st, range(len(st.node_names)), args.print_nodes, aliases,
                                 [n.f_mem for n in data.nodes]), file=sys.stderr)


@options.entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.input:
        loader.fail("This program needs an input file.")
    if len(args.input) > 1:
        loader.fail("Only one argument is accepted (the input file)")
    path = args.input[0]
    try:
        body = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as err:
        print(f"hail: {loader.io_error(err)}", file=sys.stderr)
        return 1
    try:
        data, request = ialloc.parse(body)
    except ialloc.RequestError as err:
        loader.fail(str(err))
    if args.text_data:      # as Ganeti's: the request's own cluster is read (and warned about) first
        loader.build_state(data, args)
        data = loader.read_cluster(args)
    verbose = options.verbosity(args)
    st = loader.build_state(data, args)
    if verbose > 1:
        print(f"Received request: {request}", file=sys.stderr)
        if is_dedicated(st, request):
            print("Allocation on a dedicated cluster; using lost-allocations metrics.", file=sys.stderr)
    _print_nodes(args, st, data, "Initial")
    _save(args.save, "pre-ialloc", "before iallocator run", placed(data, st))
    ok, info, result = answer(st, request, algorithm_options(args))
    print(ialloc.response(ok, info, result))
    _print_nodes(args, st, data, "Final")
    if ok:
        _save(args.save, "post-ialloc", "after iallocator run", _placed_with_new(data, st, request))
    return 0


def _placed_with_new(data, st: State, request: ialloc.Request):
    """The cluster as the allocation left it, the new instances placed as Ganeti's hail lists
    them (one allocated instance first, several after the others)."""
    known = list(zip(data.instances, st.instances))
    new = [(replace(rec, pnode=""), inst) for rec, inst in zip(request.instances, st.instances[len(data.instances):])
           if inst.pnode != NO_NODE] if request.kind in ("allocate", "multi-allocate") else []
    pairs = new + known if request.kind == "allocate" else known + new
    records, insts = [r for r, _ in pairs], [i for _, i in pairs]
    return placed(replace(data, instances=records), st, insts)
