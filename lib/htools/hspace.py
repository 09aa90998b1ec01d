"""hspace: how many more instances the cluster holds (Ganeti's capacity planner).

Reads the cluster (-t FILE, -L, -m), then places instances until nothing fits: first the
tiered allocation (the policy's largest instances, shrunk by the resource that runs out),
then the standard one (instances of the standard spec), each from the cluster as it was, and
prints both results, for people or as HTS_* shell variables (--machine-readable), as
Ganeti's hspace does.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from genet.htools import alloc, capacity, display, globaln1, loader, options, text
from genet.htools.capacity import Spec
from genet.htools.hbal import placed as placed_data
from genet.htools.metrics import ExactStats
from genet.htools.nodevals import FAIL_N1, FAIL_NAMES, INDEX
from genet.htools.state import NO_NODE, State

OPTION_NAMES = ["print_nodes", "text_data", "ialloc_src", "disk_template", "spindle_use", "simulate", "master", "luxi",
                "verbose", "quiet", "independent_groups", "accept_existing_errors", "offline",
                "no_capacity_checks", "machine_readable", "max_cpu", "max_length", "min_disk", "standard_alloc",
                "tiered_alloc", "save", "static_kvm_node_memory"]
PREFIX = "HTS"
# the phases' names: (spec key prefix, description, name)
TIERED = ("TSPEC_INI", "Tiered (initial size)", "Tiered")
STANDARD = ("SPEC", "Standard (fixed-size)", "Standard")


def build_parser():
    parser = options.build_parser("hspace", "Cluster space analyzer for genet (Ganeti's hspace).", OPTION_NAMES)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    return parser


# --- output -----------------------------------------------------------------------------------

def hs_show_double(x: float) -> str:
    """A Double as Haskell's show writes it: the shortest digits, fixed between 0.1 and 10^7,
    else d.ddde<exponent>."""
    from decimal import Decimal
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    sign = "-" if x < 0 or (x == 0 and str(x).startswith("-")) else ""
    if x == 0:
        return sign + "0.0"
    _, digits, exp = Decimal(repr(abs(x))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e = len(ds) + exp                       # the value is 0.<ds> * 10^e
    if 0 < e <= 7:
        whole, frac = ds[:e].ljust(e, "0"), ds[e:] or "0"
        return f"{sign}{whole}.{frac}"
    if e == 0:                              # 0.1 <= x < 1
        return f"{sign}0.{ds}"
    return f"{sign}{ds[0]}.{ds[1:] or '0'}e{e - 1}"


def hs_fixed(x: float, digits: int) -> str:
    """printf's %.Nf, which Haskell writes NaN and Infinity as."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return f"{x:.{digits}f}"


def quoted(value: str) -> str:
    """Ganeti's ensureQuoted: single quotes unless only letters, digits and dots."""
    return value if all(c.isalnum() or c == "." for c in value) else f"'{value}'"


def print_keys(pairs) -> None:
    for key, value in pairs:
        print(f"{PREFIX}_{key.upper()}={quoted(value)}")


def _ratio(part: int, whole: float) -> float:
    try:
        return part / whole
    except ZeroDivisionError:
        return float("nan") if part == 0 else float("inf")


def efficiencies(cs: capacity.Stats) -> dict[str, float]:
    return {"memory": _ratio(cs.imem, cs.tmem), "disk": _ratio(cs.idsk, cs.tdsk),
            "vcpu": _ratio(cs.icpu, float(cs.vcpu)), "spindles": _ratio(cs.ispn, cs.tspn)}


def stats_keys(phase: str, cs: capacity.Stats) -> list[tuple[str, str]]:
    """Ganeti's statsData under INI, TRL or FIN."""
    eff = efficiencies(cs)
    rows = [("SCORE", f"{cs.score:.8f}"), ("INST_CNT", str(cs.ninst)), ("MEM_FREE", str(cs.fmem)),
            ("MEM_AVAIL", str(cs.amem)), ("MEM_RESVD", str(cs.fmem - cs.amem)), ("MEM_INST", str(cs.imem)),
            ("MEM_OVERHEAD", str(cs.xmem + cs.nmem)), ("MEM_EFF", hs_fixed(eff["memory"], 8)),
            ("DSK_FREE", str(cs.fdsk)), ("DSK_AVAIL", str(cs.adsk)), ("DSK_RESVD", str(cs.fdsk - cs.adsk)),
            ("DSK_INST", str(cs.idsk)), ("DSK_EFF", hs_fixed(eff["disk"], 8)), ("SPN_FREE", str(cs.fspn)),
            ("SPN_INST", str(cs.ispn)), ("SPN_EFF", hs_fixed(eff["spindles"], 8)), ("CPU_INST", str(cs.icpu)),
            ("CPU_EFF", hs_fixed(eff["vcpu"], 8)), ("MNODE_MEM_AVAIL", str(cs.mmem)),
            ("MNODE_DSK_AVAIL", str(cs.mdsk))]
    return [(f"{phase}_{k}", v) for k, v in rows]


def spec_fields(spec: Spec, spindles: bool) -> list[tuple[str, int]]:
    out = [("MEM", spec.mem), ("DSK", spec.dsk), ("CPU", spec.cpu)]
    return out + [("SPN", spec.spn)] if spindles else out


def resources(pairs) -> str:
    """Ganeti's formatResources: "MEM 128, DSK 1024, CPU 1"."""
    return ", ".join(f"{k} {v}" for k, v in pairs)


def cluster_fields(cs: capacity.Stats, spindles: bool) -> list[tuple[str, str]]:
    out = [("MEM", f"{cs.tmem:.0f}"), ("DSK", f"{cs.tdsk:.0f}"), ("CPU", f"{cs.tcpu:.0f}"), ("VCPU", str(cs.vcpu))]
    return out + [("SPN", f"{cs.tspn:.0f}")] if spindles else out


def print_cluster(machine: bool, cs: capacity.Stats, nodes: int, spindles: bool) -> None:
    if machine:
        print_keys([(f"CLUSTER_{k}", v) for k, v in cluster_fields(cs, True)])
        print_keys([("CLUSTER_NODES", str(nodes))])
        print_keys(stats_keys("INI", cs))
        return
    print(f"The cluster has {nodes} nodes and the following resources:\n  "
          f"{resources(cluster_fields(cs, spindles))}.")
    print(f"There are {cs.ninst if cs.ninst > 0 else 'no'} initial instances on the cluster.")


def print_spec(machine: bool, spec: Spec, kind, template: str, spindles: bool) -> None:
    prefix, description, _ = kind
    if machine:
        print_keys([(f"{prefix}_{k}", str(v)) for k, v in spec_fields(spec, True)])
        print_keys([(f"{prefix}_RQN", str(2 if template == "drbd" else 1))])
        print_keys([(f"{prefix}_DISK_TEMPLATE", template)])
        return
    print(f"{description} instance spec is:\n  {resources(spec_fields(spec, spindles))}, "
          f"using disk template '{template}'.")


def print_scores_and_efficiency(ini: State, fin: State, reasons) -> None:
    if not reasons:         # tiered allocation stopped by -l 0 before trying anything
        sys.stdout.flush()
        print("hspace: Prelude.head: empty list", file=sys.stderr)
        raise SystemExit(1)
    print(f"  - most likely failure reason: {FAIL_NAMES[reasons[0][0]]}")
    print(f"  - initial cluster score: {compcv(ini):.8f}")
    print(f"  -   final cluster score: {compcv(fin):.8f}")
    eff = efficiencies(capacity.totals(fin))
    names = ["memory", "disk", "vcpu"] + (["spindles"] if capacity.have_excl_storage(fin) else [])
    width = max(len(n) for n in names)
    for name in names:
        print(f"  - {name:>{width}} usage efficiency: {hs_fixed(eff[name] * 100, 2):>5}%")


def compcv(st: State) -> float:
    return float(ExactStats(st, np.arange(len(st.node_names))).total())


def allocation_delta(ini: capacity.Stats, fin: capacity.Stats) -> list[tuple[str, str]]:
    """Ganeti's computeAllocationDelta as the KM_USED/POOL/UNAV keys."""
    rows = {"USED": (ini.icpu, ini.ncpu, ini.imem, ini.idsk, ini.ispn),
            "POOL": (fin.icpu - ini.icpu, fin.ncpu - ini.ncpu, fin.imem - ini.imem, fin.idsk - ini.idsk,
                     fin.ispn - ini.ispn),
            "UNAV": (fin.vcpu - fin.icpu, fin.tcpu - fin.ncpu, int(fin.tmem) - fin.imem, int(fin.tdsk) - fin.idsk,
                     int(fin.tspn) - fin.ispn)}
    out = []
    for name, (cpu, npu, mem, dsk, spn) in rows.items():
        out += [(f"KM_{name}_CPU", str(cpu)), (f"KM_{name}_NPU", hs_show_double(npu)),
                (f"KM_{name}_MEM", str(mem)), (f"KM_{name}_DSK", str(dsk)), (f"KM_{name}_SPN", str(spn))]
    return out


def spec_map(specs: list[Spec]) -> list[tuple[Spec, int]]:
    """Ganeti's tieredSpecMap: runs of equal specs in the order they were placed."""
    out: list[tuple[Spec, int]] = []
    for spec in specs:
        if out and out[-1][0] == spec:
            out[-1] = (spec, out[-1][1] + 1)
        else:
            out.append((spec, 1))
    return out


def print_tiered(machine: bool, specs: list[Spec], ini: State, fin: State, reasons) -> None:
    runs = spec_map(specs)
    if machine:
        print_keys(stats_keys("TRL", capacity.totals(fin)))
        print_keys([("TSPEC", " ".join(f"{s.mem},{s.dsk},{s.cpu},{s.spn}={n}" for s, n in runs))])
        print_keys(allocation_delta(capacity.totals(ini), capacity.totals(fin)))
        return
    print("Tiered allocation results:")
    spindles = capacity.have_excl_storage(ini)
    if not runs:
        print("  - no instances allocated")
    for spec, n in runs:
        print(f"  - {n:3d} instances of spec {resources(spec_fields(spec, spindles))}")
    print_scores_and_efficiency(ini, fin, reasons)


def print_results(machine: bool, ini: State, fin: State, initial: int, allocs: int, reasons) -> None:
    if not machine:
        print("Normal (fixed-size) allocation results:")
        print(f"  - {allocs:3d} instances allocated")
        print_scores_and_efficiency(ini, fin, reasons)
        return
    cs = capacity.totals(fin)
    if initial + allocs != cs.ninst:
        loader.fail(f"internal inconsistency, allocated ({initial + allocs}) != counted ({cs.ninst})\n")
    print_keys(stats_keys("FIN", cs))
    print_keys([("ALLOC_USAGE", hs_fixed(_ratio(initial, float(initial + allocs)), 8)),
                ("ALLOC_INSTANCES", str(allocs)), ("ALLOC_FAIL_REASON", FAIL_NAMES[reasons[0][0]].upper())])
    print_keys([(f"ALLOC_{FAIL_NAMES[mode]}_CNT", str(count)) for mode, count in reasons])


def print_nodes(fields, message: str, st: State, data) -> None:
    if fields is not None:
        print(f"\n{message} status:", file=sys.stderr)
        print(display.node_table(st, range(len(st.node_names)), fields, loader.aliases(st),
                                 [n.f_mem for n in data.nodes]), file=sys.stderr)


def print_allocation_map(verbose: int, message: str, st: State, new) -> None:
    """-v -v: the instances placed, as Ganeti's printAllocationMap lists them."""
    if verbose <= 1:
        return
    excl = capacity.have_excl_storage(st)
    rows = []
    for inst in new:
        spindles = ("?" if inst.spindles is None else str(inst.spindles)) if excl else ""
        rows.append([inst.name, st.node_names[inst.pnode], st.node_names[inst.snode] if inst.snode != NO_NODE else "",
                     str(inst.mem), str(inst.dsk), str(inst.vcpus), spindles])
    numeric = [False, False, False, True, True, True, True]
    widths = [max((len(r[k]) for r in rows), default=0) for k in range(len(numeric))]
    print(f"{message} map", file=sys.stderr)
    for r in rows:
        cells = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        print(" " + " ".join(cells), file=sys.stderr)


# --- the run ----------------------------------------------------------------------------------

def _plan_phase(args, data, st: State, planner, kind, spec: Spec, template: str, stopped, run):
    """Ganeti's runAllocation: the phase's result (or the stop the cluster's state imposes),
    then its spec, map, node list and saved state."""
    if stopped:
        reasons, fin, new = stopped, st, []
    else:
        try:
            res = run()
        except alloc.AllocError as err:
            loader.fail(f"failure during allocation: {err}")
        fin = planner.st
        reasons = sorted(res.failures, key=lambda mc: -mc[1])
        new = [fin.instances[fin.instance_index[name]] for name in planner.names]
    _, _, name = kind
    print_spec(args.machine_readable, spec, kind, template, capacity.have_excl_storage(fin))
    print_allocation_map(options.verbosity(args), f"{name} allocation", fin, new)
    print_nodes(args.print_nodes, f"{name} allocation", fin, data)
    if args.save:
        records = [replace(template_record(i), pnode="") for i in new]
        saved = placed_data(replace(data, instances=data.instances + records), fin,
                            fin.instances[:len(data.instances)] + new)
        path = f"{args.save}.{name.lower()}"
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.serialize(saved))
        print(f"The cluster state after {name.lower()} allocation has been written to file '{path}'",
              file=sys.stderr)
    return reasons, fin, new


def template_record(inst):
    from genet.htools.cluster import Instance
    return Instance(inst.name, inst.mem, inst.dsk, inst.vcpus, inst.status, inst.auto_balance, "", None,
                    inst.template, list(inst.tags), inst.spindle_use, inst.spindles, disks=list(inst.disks))


@options.entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.args:
        loader.fail("This program doesn't take any arguments.")
    verbose = options.verbosity(args)
    data = loader.read_cluster(args) if not args.simulate else _simulated(args)
    st = loader.build_state(data, args, verbose)
    ipol = data.ipolicy
    if not ipol.disk_templates:
        loader.fail("null list of disk templates received from cluster")
    template = args.disk_template or ipol.disk_templates[0]
    su = args.spindle_use if args.spindle_use is not None else ipol.std.spindle_use
    suffix = loader.common_suffix(st.node_names + [i.name for i in st.instances])
    if suffix and verbose > 1:
        print(f"Note: Stripping common suffix of '{suffix}' from names", file=sys.stderr)
    print_nodes(args.print_nodes, "Initial cluster", st, data)
    everything = np.arange(len(st.node_names))
    if verbose > 2:
        from genet.htools.metrics import GroupScore
        print(f"Initial coefficients: overall {compcv(st):.8f}\n"
              + display.score_table(GroupScore(st, everything).values()), end="", file=sys.stderr)
    ini_stats = capacity.totals(st)
    print_cluster(args.machine_readable, ini_stats, len(st.node_names), capacity.have_excl_storage(st))

    opts = alloc.Options(capacity=not args.no_capacity_checks, accept_existing=args.accept_existing_errors)
    online = everything[~st.F[INDEX["offline"]].astype(bool)]
    bad_nodes = [int(n) for n in online if st.F[INDEX["fail_n1"], n]]
    group_ids = list(range(len(data.groups)))
    bad_groups = [g for g in group_ids if not _redundant_group(st, opts, g)]
    if verbose > 3 and bad_nodes:
        print(f"Bad nodes: {text.hs_show([st.node_names[n] for n in bad_nodes])}", file=sys.stderr)
    if verbose > 3 and bad_groups:
        print(f"Bad groups: {text.hs_show([data.groups[g].name for g in bad_groups])}", file=sys.stderr)
    unallocable = set() if args.accept_existing_errors else {int(st.node_group[n]) for n in bad_nodes}
    if args.independent_groups:
        unallocable |= set(bad_groups)
        opts = replace(opts, capacity_ignore_groups=tuple(bad_groups))
    remaining = any(data.groups[g].alloc_policy != "unallocable" and g not in unallocable for g in group_ids)
    stop = None
    if not args.accept_existing_errors and not (args.independent_groups and remaining) and bad_nodes:
        stop = [(FAIL_N1, 1)]
    limit = None if args.max_length == -1 else args.max_length

    allocable = [g for g in group_ids if data.groups[g].alloc_policy != "unallocable" and g not in unallocable]
    candidates = online[np.isin(st.node_group[online], allocable)]
    tmpl = capacity.Template(template, su)
    if verbose > 3:
        print(f"Allocatable nodes: {_show_alloc_nodes(st, candidates, tmpl.nodes, data.first_node_index)}", file=sys.stderr)

    tspecs = [args.tiered_alloc] if args.tiered_alloc else [(hi.cpu_count, hi.memory_size, hi.disk_size,
                                                               hi.spindle_use) for _, hi in ipol.minmax]
    if not tspecs:
        loader.fail("Empty list of specs received from the cluster")
    tspecs = [Spec(*t) for t in tspecs]

    trl_planner = capacity.Planner(st.clone(), opts, candidates, tmpl)

    def tiered():
        res = capacity.Result([], [])
        for spec in tspecs:
            left = None if limit is None else limit - len(res.placed)
            if limit is not None and left <= 0:
                break
            res = trl_planner.tiered(spec, left, list(res.placed))
        return res
    treasons, trl, trl_new = _plan_phase(args, data, st, trl_planner, TIERED, tspecs[0], template, stop, tiered)
    print_tiered(args.machine_readable, [_spec_of(i) for i in trl_new], st, trl, treasons)

    ispec = Spec(*args.standard_alloc) if args.standard_alloc else Spec(ipol.std.cpu_count, ipol.std.memory_size,
                                                                          ipol.std.disk_size, ipol.std.spindle_use)
    std_planner = capacity.Planner(st.clone(), opts, candidates, tmpl)
    sreasons, fin, std_new = _plan_phase(args, data, st, std_planner, STANDARD, ispec, template, stop,
                                         lambda: std_planner.iterate(ispec, limit, []))
    print_results(args.machine_readable, st, fin, len(data.instances), len(std_new), sreasons)
    if args.machine_readable:
        print_keys([("OK", "1")])
    return 0


def _spec_of(inst) -> Spec:
    """Ganeti's specOf: a one-disk instance's spindles, else 0."""
    spn = inst.disks[0][1] if len(inst.disks) == 1 and inst.disks[0][1] is not None else 0
    return Spec(inst.vcpus, inst.mem, inst.dsk, spn)


def _redundant_group(st: State, opts: alloc.Options, gi: int) -> bool:
    """Ganeti's redundantGrp: the group's nodes can each be evacuated."""
    members = np.flatnonzero(st.node_group == gi)
    red = globaln1.Redundancy(st, opts, members)
    return globaln1.redundant(st, red.nodes, red.members)


def _show_alloc_nodes(st: State, nodes, count: int, first: int) -> str:
    """Ganeti's show of AllocNodes (Left [nodes] or Right [(primary,[secondaries])]), the
    nodes numbered from ``first`` as Ganeti's backend numbered them."""
    nodes = [int(n) + first for n in nodes]
    group = {n: st.node_group[n - first] for n in nodes}
    if count == 1:
        return f"Left [{','.join(map(str, nodes))}]"
    pairs = [(p, [s for s in nodes if s != p and group[s] == group[p]]) for p in nodes]
    return "Right [" + ",".join(f"({p},[{','.join(map(str, ss))}])" for p, ss in pairs if ss) + "]"


def _simulated(args):
    from genet.htools import simu
    return simu.cluster(args.simulate)


if __name__ == "__main__":
    sys.exit(main())
