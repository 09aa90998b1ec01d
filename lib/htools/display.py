"""What the htools print, in Ganeti's shapes: tables, node fields, the solution and its commands."""
from __future__ import annotations

import math

from genet.htools import metrics, nodevals
from genet.htools.state import NO_NODE, State


def table(header: list[str], rows: list[list[str]], numeric: list[bool], prefix: str = "") -> str:
    """Ganeti's printTable: columns padded to their widest cell, numbers to the right."""
    cols = list(zip(*([header] + rows))) if header else []
    widths = [max(len(c) for c in col) for col in cols]
    lines = []
    for row in [header] + rows:
        cells = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        lines.append(prefix + " " + " ".join(cells))
    return "".join(line + "\n" for line in lines)


def hs_g(x: float, prec: int = 6) -> str:
    """Haskell printf's %g: fixed notation for exponents 0..7, else exponent notation."""
    if x == 0 or math.isnan(x) or math.isinf(x):
        return f"{x:.{prec}f}"
    e = math.floor(math.log10(abs(x))) + 1
    if e < 0 or e > 7:
        mant, exp = f"{x:.{prec}e}".split("e")
        return f"{mant}e{int(exp)}"
    return f"{x:.{prec}f}"


def score_table(values: list[float], prefix: str = "  ") -> str:
    """hbal -v -v -v's table of the score's components (Ganeti's printStats)."""
    rows = [[name, f"{v:.8f}", f"x{w:.2f}"] for (name, w, _), v in zip(metrics.METRICS, values)]
    return table(["Field", "Value", "Weight"], rows, [False, True, True], prefix)


HS_TEMPLATES = {"diskless": "DTDiskless", "file": "DTFile", "sharedfile": "DTSharedFile", "plain": "DTPlain",
                "blockdev": "DTBlock", "drbd": "DTDrbd8", "rbd": "DTRbd", "ext": "DTExt", "gluster": "DTGluster",
                "mirror": "DTMirror"}


def hs_policy(pol) -> str:
    """A policy as Haskell's show prints it (hbal -v -v)."""
    def spec(s):
        return (f"ISpec {{iSpecMemorySize = {s.memory_size}, iSpecCpuCount = {s.cpu_count}, "
                f"iSpecDiskSize = {s.disk_size}, iSpecDiskCount = {s.disk_count}, "
                f"iSpecNicCount = {s.nic_count}, iSpecSpindleUse = {s.spindle_use}}}")
    minmax = ",".join(f"MinMaxISpecs {{minMaxISpecsMinSpec = {spec(lo)}, minMaxISpecsMaxSpec = {spec(hi)}}}"
                      for lo, hi in pol.minmax)
    templates = ",".join(HS_TEMPLATES[t] for t in pol.disk_templates)
    return (f"IPolicy {{iPolicyMinMaxISpecs = [{minmax}], iPolicyStdSpec = {spec(pol.std)}, "
            f"iPolicyDiskTemplates = [{templates}], iPolicyVcpuRatio = {pol.vcpu_ratio!r}, "
            f"iPolicySpindleRatio = {pol.spindle_ratio!r}}}")


# --- nodes ----------------------------------------------------------------------------------

DEFAULT_NODE_FIELDS = ["status", "name", "tmem", "nmem", "imem", "xmem", "fmem", "umem", "rmem", "tdsk", "fdsk",
                       "tcpu", "ucpu", "pcnt", "scnt", "pfmem", "pfdsk", "rcpu", "cload", "mload", "dload", "nload"]
NODE_HEADERS = {
    "idx": ("Index", True), "name": ("Name", False), "fqdn": ("Name", False), "status": ("F", False),
    "tmem": ("t_mem", True), "nmem": ("n_mem", True), "xmem": ("x_mem", True), "fmem": ("f_mem", True),
    "umem": ("u_mem", True), "amem": ("a_mem", True), "imem": ("i_mem", True), "rmem": ("r_mem", True),
    "tdsk": ("t_dsk", True), "fdsk": ("f_dsk", True), "tcpu": ("pcpu", True), "ucpu": ("vcpu", True),
    "pcnt": ("pcnt", True), "scnt": ("scnt", True), "plist": ("primaries", True), "slist": ("secondaries", True),
    "pfmem": ("p_fmem", True), "pfdsk": ("p_fdsk", True), "rcpu": ("r_cpu", True), "cload": ("lCpu", True),
    "mload": ("lMem", True), "dload": ("lDsk", True), "nload": ("lNet", True), "ptags": ("PrimaryTags", False),
    "peermap": ("PeerMap", False), "spindle_count": ("NodeSpindles", True), "hi_spindles": ("MaxSpindles", True),
    "inst_spindles": ("InstSpindles", True),
}


def _hs_float(x: float) -> str:
    """Haskell's show for a Double (what -p prints for spindles)."""
    return repr(float(x))


def node_field(st: State, i: int, field: str, alias: str, f_mem: int) -> str:
    v = st.vals(i)
    unalloc = int(nodevals.unallocated_mem(v))
    metric = metrics.node_metrics(st, i)
    pri = [inst.idx for inst in st.instances if inst.pnode == i and not inst.forthcoming]
    sec = [inst.idx for inst in st.instances if inst.snode == i and not inst.forthcoming]
    values = {
        "idx": lambda: f"{i:4d}", "name": lambda: alias, "fqdn": lambda: st.node_names[i],
        "status": lambda: "-" if v.offline else "*" if v.fail_n1 else " ",
        "tmem": lambda: f"{v.t_mem:5.0f}", "nmem": lambda: f"{int(v.n_mem):5d}", "xmem": lambda: f"{int(v.x_mem):5d}",
        "fmem": lambda: f"{f_mem:5d}", "umem": lambda: f"{unalloc:5d}", "imem": lambda: f"{int(v.i_mem):5d}",
        "rmem": lambda: f"{int(v.r_mem):5d}", "amem": lambda: f"{max(0, unalloc - int(v.r_mem)):5d}",
        "tdsk": lambda: f"{v.t_dsk / 1024:5.0f}", "fdsk": lambda: f"{int(v.f_dsk) // 1024:5d}",
        "tcpu": lambda: f"{v.t_cpu:4.0f}", "ucpu": lambda: f"{int(v.u_cpu):4d}",
        "pcnt": lambda: f"{len(pri):3d}", "scnt": lambda: f"{len(sec):3d}",
        "plist": lambda: str(sorted(pri, reverse=True)).replace(" ", ""),
        "slist": lambda: str(sorted(sec, reverse=True)).replace(" ", ""),
        "pfmem": lambda: f"{metric[0]:6.4f}", "pfdsk": lambda: f"{metric[1]:6.4f}",
        "rcpu": lambda: f"{v.u_cpu / v.t_cpu:5.2f}",
        "cload": lambda: f"{v.load_c:5.3f}", "mload": lambda: f"{v.load_m:5.3f}",
        "dload": lambda: f"{v.load_d:5.3f}", "nload": lambda: f"{v.load_n:5.3f}",
        "ptags": lambda: ",".join(f"{t}={int(c)}" for t, c in sorted(zip(st.excl_tags, st.C[i])) if c),
        "peermap": lambda: str([(int(p), int(m)) for p, m in enumerate(st.P[i]) if m]).replace(" ", ""),
        "spindle_count": lambda: str(int(v.t_sp)), "hi_spindles": lambda: _hs_float(v.hi_sp),
        "inst_spindles": lambda: _hs_float(v.inst_sp),
    }
    return values[field]() if field in values else "<unknown field>"


def node_table(st: State, nodes, fields: list[str], aliases: list[str], f_mem: list[int]) -> str:
    if not fields:
        fields = DEFAULT_NODE_FIELDS
    elif fields[0] == "+":
        fields = DEFAULT_NODE_FIELDS + fields[1:]
    header = [NODE_HEADERS.get(f, ("<unknown field>", False))[0] for f in fields]
    numeric = [NODE_HEADERS.get(f, ("", False))[1] for f in fields]
    rows = [[node_field(st, int(i), f, aliases[int(i)], f_mem[int(i)]) for f in fields] for i in sorted(nodes)]
    return table(header, rows, numeric)


def instance_table(st: State, insts, node_names: list[str]) -> str:
    """hbal --print-instances (Ganeti's printInsts)."""
    rows = []
    for inst in sorted(insts, key=lambda i: i.idx):
        c, m, d, n = inst.util
        rows.append(["R" if inst.running else " ", inst.name, node_names[inst.pnode],
                     node_names[inst.snode] if inst.snode != NO_NODE else "", "Y" if inst.auto_balance else "N",
                     f"{inst.vcpus:3d}", f"{inst.mem:5d}", f"{inst.dsk // 1024:5d}",
                     f"{c:5.3f}", f"{m:5.3f}", f"{d:5.3f}", f"{n:5.3f}"])
    header = ["F", "Name", "Pri_node", "Sec_node", "Auto_bal", "vcpu", "mem", "dsk", "lCpu", "lMem", "lDsk", "lNet"]
    return table(header, rows, [False] * 5 + [True] * 7)


# --- the solution ---------------------------------------------------------------------------

def move_commands(move: str, running: bool, inst: str, npri: str, nsec: str) -> tuple[str, list[str]]:
    """The move's short description and its gnt-instance commands (Ganeti's computeMoves)."""
    mig_word = "migrate" if running else "failover"
    mig = f"{mig_word} -f {inst}"

    def rep(node: str) -> str:
        return f"replace-disks -n {node} {inst}"
    return {
        "Failover": ("f", [mig]),
        "FailoverToAny": (f"fa:{npri}", [f"{mig_word} -f -n {npri} {inst}"]),
        "FailoverAndReplace": (f"f r:{nsec}", [mig, rep(nsec)]),
        "ReplaceSecondary": (f"r:{nsec}", [rep(nsec)]),
        "ReplaceAndFailover": (f"r:{npri} f", [rep(npri), mig]),
        "ReplacePrimary": (f"f r:{npri} f", [mig, rep(npri), mig]),
    }[move]


def solution_line(step, pos: int, aliases: list[str], imlen: int, nmlen: int) -> tuple[str, list[str]]:
    """One line of hbal's solution (Ganeti's printSolutionLine) and the move's commands."""
    inst = step.inst
    pmlen = 2 * nmlen + 1

    def nodes(p: int, s: int) -> str:
        return aliases[p] if s == NO_NODE else f"{aliases[p]}:{aliases[s]}"
    name = inst_alias(inst)
    short, cmds = move_commands(step.move, inst.running, name, aliases[step.new_p],
                                aliases[step.new_s] if step.new_s != NO_NODE else "")
    line = (f"  {pos:3d}. {name:<{imlen}} {nodes(step.old_p, step.old_s):<{pmlen}} => "
            f"{nodes(step.new_p, step.new_s):<{pmlen}} {step.score:12.8f} a={short}")
    return line, cmds


def inst_alias(inst) -> str:
    return getattr(inst, "alias", inst.name)


def job_sets(moves: list[tuple[list[int], list[str]]]) -> list[list[list[str]]]:
    """Moves grouped into sets that touch no node twice, to run in parallel (Ganeti's splitJobs):
    walking back from the last move, a move joins the current set while its nodes are new to it."""
    sets: list[list[tuple[list[int], list[str]]]] = []
    busy: list[int] = []
    for nodes, cmds in reversed(moves):
        if sets and not set(nodes) & set(busy):
            sets[0].insert(0, (nodes, cmds))
            busy = nodes + busy
        else:
            sets.insert(0, [(nodes, cmds)])
            busy = list(nodes)
    return [[cmds for _, cmds in js] for js in sets]


def format_commands(sets: list[list[list[str]]]) -> str:
    """The command list (Ganeti's formatCmds)."""
    out = []
    for jsn, js in enumerate(sets, 1):
        for sn, cmds in enumerate(js, 1):
            if sn == 1:
                out += ["", f"echo jobset {jsn}, {len(js)} jobs"]
            out += [f"  echo job {jsn}/{sn}", "  check"] + [f"  gnt-instance {c}" for c in cmds]
    return "".join(line + "\n" for line in out)


SH_TEMPLATE = ("#!/bin/sh\n\n# Auto-generated script for executing cluster rebalancing\n\n"
               "# To stop, touch the file /tmp/stop-htools\n\nset -e\n\ncheck() {\n"
               "  if [ -f /tmp/stop-htools ]; then\n    echo 'Stop requested, exiting'\n    exit 0\n  fi\n}\n\n")


def involved_nodes(step) -> list[int]:
    """The nodes a move touches: its new ones, then its old ones (Ganeti's involvedNodes)."""
    out = []
    for n in (step.new_p, step.new_s, step.old_p, step.old_s):
        if n >= 0 and n not in out:
            out.append(n)
    return out

