"""Reading the cluster for an htools program: the backend its options name, then the
utilisation data and node options applied as Ganeti's loadExternalData and setNodeStatus do."""
from __future__ import annotations

import sys

from genet.htools import text
from genet.htools.cluster import ClusterData
from genet.htools.state import State


class HtoolsError(Exception):
    """A refusal an htools program prints as "Error: ..." and exits 1 on."""


def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    raise SystemExit(1)


def common_suffix(names: list[str]) -> str:
    """The longest ".domain" every name ends with (Ganeti strips it for display)."""
    if not names:
        return ""
    first, rest = names[0], names[1:]
    best = ""
    for i in range(len(first)):
        suffix = first[i:]
        if suffix.startswith(".") and all(n.endswith(suffix) for n in rest):
            best = suffix
            break
    return best


def aliases(st) -> list[str]:
    """The nodes' names without the domain all names share, which the htools print; the
    instances get theirs as ``alias``."""
    suffix = common_suffix(st.node_names + [i.name for i in st.instances])
    for inst in st.instances:
        inst.alias = inst.name[:len(inst.name) - len(suffix)]
    return [n[:len(n) - len(suffix)] for n in st.node_names]


def lookup_name(names: list[str], wanted: str) -> str | None:
    """``wanted`` itself, or the one name it is the first components of (node1 for node1.example.com)."""
    if wanted in names:
        return wanted
    hits = [n for n in names if n.startswith(wanted + ".")]
    return hits[0] if len(hits) == 1 else None


def read_cluster(args) -> ClusterData:
    """The cluster from the backend the options name, with what --mond measured (as Ganeti's
    loadExternalData, before anything is printed)."""
    data = _read_backend(args)
    if getattr(args, "mond", False) and not getattr(args, "ignore_dynu", False):
        from genet.htools import mond
        data.measured = mond.read(args, data)
    return data


def _read_backend(args) -> ClusterData:
    chosen = [x for x in (getattr(args, "master", None), getattr(args, "luxi", None) is not None or None,
                          getattr(args, "text_data", None)) if x]
    if len(chosen) > 1:
        fail("Only one of the rapi, luxi, and data files options should be given.")
    try:
        if getattr(args, "text_data", None):
            return text.load(args.text_data)
        if getattr(args, "luxi", None) is not None or getattr(args, "master", None):
            from genet.htools import live
            return live.load(args)
        if getattr(args, "ialloc_src", None):
            return _read_ialloc(args.ialloc_src)
    except OSError as err:
        fail(f"failed to load data, aborting: {io_error(err)}")
    except (text.FormatError, HtoolsError) as err:
        fail(f"failed to load data, aborting: {err}")
    fail("failed to load data, aborting: No backend selected! Exiting.")


def _read_ialloc(path: str) -> ClusterData:
    """-I FILE: the cluster an IAllocator request describes (a request that does not parse is
    refused as hail refuses it, without the "failed to load data" of the other backends)."""
    from genet.htools import ialloc     # ialloc reads live's policies, and live this module
    with open(path, encoding="utf-8") as f:
        body = f.read()
    try:
        return ialloc.parse(body)[0]
    except ialloc.RequestError as err:
        fail(str(err))


def io_error(err: OSError) -> str:
    """An error opening a file as Haskell words it ("PATH: openFile: does not exist (...)")."""
    what = {2: "does not exist", 13: "permission denied", 21: "inappropriate type"}.get(err.errno, "failed")
    return f"{err.filename}: openFile: {what} ({err.strerror})"


def _utilisation(path: str | None, prog: str) -> dict:
    """The -U file: "NAME CPU MEM DISK NET" lines (Ganeti's parseUtilisation)."""
    if not path:
        return {}
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        print(f"{prog}: {io_error(err)}", file=sys.stderr)
        raise SystemExit(1) from None
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 5:
            fail(f"can't parse utilisation data: Cannot parse line {line}")
        try:
            out[parts[0]] = tuple(text._number(float, parts[0], x) for x in parts[1:])
        except text.FormatError as err:
            fail(f"can't parse utilisation data: {err}")
    return out


def missing_resources(data: ClusterData, st: State) -> list[str]:
    """Nodes whose free memory or disk is well below what their instances explain (Ganeti's
    updateMissing warnings), last node first as Ganeti lists them."""
    from genet.htools.nodevals import INDEX
    used_dsk = [0] * len(data.nodes)
    for inst in st.instances:
        for n in {inst.pnode, inst.snode} - {-1}:       # a node listed twice counts it once, as Ganeti
            used_dsk[n] += inst.dsk
    out = []
    for k, node in enumerate(data.nodes):
        delta_mem = int(st.F[INDEX["x_mem"], k])
        delta_dsk = int(node.t_dsk) - node.f_dsk - used_dsk[k]
        if delta_mem > 512 or delta_dsk > 1024:
            out.insert(0, f"node {node.name} is missing {delta_mem} MB ram and {delta_dsk // 1024} GB disk")
    return out


def build_state(data: ClusterData, args, verbose: int = 1, node_status: bool = True) -> State:
    """The cluster as the algorithms read it, with the program's node and instance options
    (without -O when ``node_status`` is false: the program calls set_node_status later)."""
    inst_names = [i.name for i in data.instances]
    wanted = list(getattr(args, "select_instances", []) or []) + list(getattr(args, "exclude_instances", []) or [])
    unknown = [w for w in wanted if lookup_name(inst_names, w) is None]
    if unknown:
        fail(f"failed to load data, aborting: Unknown instance(s): {text.hs_show(unknown)}")
    util = _utilisation(getattr(args, "dynu_file", None), getattr(args, "prog", "hbal"))
    measured = data.measured
    if measured is not None:
        util.update(measured.util)
    if getattr(args, "ignore_dynu", False):
        util = {name: (0.0, 0.0, 0.0, 0.0) for name in inst_names}
    extags = getattr(args, "exclusion_tags", None)
    st = State(data, min_disk=getattr(args, "min_disk", 0.0), max_cpu=getattr(args, "max_cpu", None),
                 exclusion_tags=[t + ":" for t in extags] if extags else None,
                 select=[lookup_name(inst_names, w) for w in getattr(args, "select_instances", []) or []],
                 exclude=[lookup_name(inst_names, w) for w in getattr(args, "exclude_instances", []) or []],
                 util=util, static_node_mem=getattr(args, "static_kvm_node_memory", 0))
    if measured is not None:
        measured.apply_node_cpu(st)
    warnings = missing_resources(data, st)
    if warnings and verbose:
        print("Warning: cluster has inconsistent data:", file=sys.stderr)
        print("".join(f"  - {w}\n" for w in warnings), file=sys.stderr)
    if node_status:
        set_node_status(st, args)
    return st


def set_node_status(st: State, args) -> None:
    """The nodes -O names marked offline (Ganeti's setNodeStatus, which sees the list last first)."""
    offline = list(reversed(getattr(args, "offline", []) or []))
    wrong = [o for o in offline if lookup_name(st.node_names, o) is None]
    if wrong:
        fail(f"wrong node name(s) set as offline: {','.join(wrong)}\n")
    st.set_offline([lookup_name(st.node_names, o) for o in offline])


def save_cluster(path: str | None, ext: str, what: str, data: ClusterData) -> None:
    """-S FILE: the cluster written to FILE.ext in the text format (Ganeti's maybeSaveData)."""
    if path:
        out = f"{path}.{ext}"
        with open(out, "w", encoding="utf-8") as f:
            f.write(text.serialize(data))
        print(f"The cluster state {what} has been written to file '{out}'", file=sys.stderr)
