"""Ganeti's htools text format: the cluster as one file, read by ``-t FILE`` and written by hscan.

Sections separated by an empty line: node groups, nodes, instances, cluster tags and
(optionally) instance policies, one record a line with fields separated by ``|``. Older,
shorter lines take Ganeti's defaults for the fields they lack. Ganeti's own test data and
hscan's output use this format, so the same file can be given to genet's and Ganeti's tools.
"""
from __future__ import annotations

from genet.htools.cluster import (ALLOC_POLICIES, INSTANCE_STATUSES, TEMPLATES, ClusterData, Group,
                                  Instance, IPolicy, ISpec, Node, default_ipolicy)


class FormatError(ValueError):
    """The file is not in the htools text format; the message names the record."""


def _split(text: str, sep: str) -> list[str]:
    """Ganeti's sepSplit: nothing for an empty string, else every piece (trailing empties kept)."""
    return text.split(sep) if text else []


def hs_show(fields: list[str]) -> str:
    """A list of strings as Haskell's show writes it (Ganeti's messages quote records so)."""
    return "[" + ",".join('"' + f.replace("\\", "\\\\").replace('"', '\\"') + '"' for f in fields) + "]"


def _number(kind, owner: str, value: str):
    """Ganeti's tryRead: the value, or "OWNER: cannot parse string 'VALUE'"."""
    try:
        return kind(value)
    except ValueError:
        raise FormatError(f"{owner}: cannot parse string '{value}'") from None


def _yes_no(value: str, what: str) -> bool:
    if value not in ("Y", "N"):
        raise FormatError(f"Invalid {what} value {value!r}")
    return value == "Y"


# --- reading -----------------------------------------------------------------------------------

def _group(fields: list[str]) -> Group:
    if len(fields) == 4:
        fields = fields + [""]
    if len(fields) < 5:
        raise FormatError(f"Invalid/incomplete group data: '{hs_show(fields)}'")
    name, uuid, policy, tags, nets = fields[:5]
    if policy not in ALLOC_POLICIES:
        raise FormatError(f"Invalid alloc_policy {policy!r} for group {name}")
    return Group(name, uuid, policy, _split(tags, ","), _split(nets, ","))


NODE_DEFAULTS = ["1", "", "N", "0", "1", "1.0"]   # spindles, tags, excl_stor, free spindles, cpus, speed


def _node(fields: list[str], groups: dict[str, Group]) -> Node:
    if 9 <= len(fields) < 15:
        fields = fields + NODE_DEFAULTS[len(fields) - 9:]
    if len(fields) < 15:
        raise FormatError(f"Invalid/incomplete node data: '{hs_show(fields)}'")
    name, tm, nm, fm, td, fd, tc, fo, gu, sp, tags, excl, fsp, ncpu, speed = fields[:15]
    if gu not in groups:
        raise FormatError(f"Unknown group '{gu}' for node {name}")
    if "?" in (tm, nm, fm, td, fd, tc):   # a node that did not answer: offline, empty
        return Node(name, 0.0, 0, 0, 0.0, 0, 0.0, gu, offline=True, spindles=0, n_cpu=0)
    owner = name
    return Node(name, _number(float, owner, tm), _number(int, owner, nm), _number(int, owner, fm),
                _number(float, owner, td), _number(int, owner, fd), _number(float, owner, tc), gu,
                offline=fo == "Y", master=fo == "M", spindles=_number(int, owner, sp),
                tags=_split(tags, ","), excl_storage=_yes_no(excl, f"exclusive_storage for node '{name}'"),
                free_spindles=_number(int, owner, fsp), n_cpu=_number(int, owner, ncpu),
                cpu_speed=_number(float, owner, speed))


INSTANCE_DEFAULTS = ["1", "-", "N"]   # spindle use, spindles, forthcoming


def _instance(fields: list[str], nodes: set[str]) -> Instance:
    if 10 <= len(fields) < 13:
        fields = fields + INSTANCE_DEFAULTS[len(fields) - 10:]
    if len(fields) < 13:
        raise FormatError(f"Invalid/incomplete instance data: '{hs_show(fields)}'")
    name, mem, dsk, vcpus, status, auto_bal, pnode, snode, dt, tags, su, spindles, forth = fields[:13]
    for node in (pnode, snode) if snode else (pnode,):
        if node not in nodes:
            raise FormatError(f"Unknown node '{node}' for instance {name}")
    if status not in INSTANCE_STATUSES:
        raise FormatError(f'Invalid string value for type InstanceStatus: "{status}"')
    if dt not in TEMPLATES:
        raise FormatError(f'Instance {name}: Invalid string value for type DiskTemplate: "{dt}"')
    owner = name
    inst = Instance(name, _number(int, owner, mem), _number(int, owner, dsk), _number(int, owner, vcpus), status,
                    _yes_no(auto_bal, f"auto_balance for instance {name}"), pnode, snode or None, dt,
                    _split(tags, ","), _number(int, owner, su),
                    None if spindles == "-" else _number(int, owner, spindles),
                    _yes_no(forth, f"forthcoming for instance {name}"))
    if inst.mirror == "internal" and inst.snode == inst.pnode:
        raise FormatError(f"Instance {name} has same primary and secondary node - {pnode}")
    return inst


def _ispec(text: str, owner: str) -> ISpec:
    fields = _split(text, ",")
    if len(fields) < 6:
        raise FormatError(f"Invalid ispec data for {owner}: {fields!r}")
    return ISpec(*(_number(int, owner, f) for f in fields[:6]))


def _ipolicy(fields: list[str]) -> tuple[str, IPolicy]:
    if len(fields) < 6:
        raise FormatError(f"Invalid ipolicy data: '{hs_show(fields)}'")
    owner, std, minmax, templates, vcpu_ratio, spindle_ratio = fields[:6]
    specs = _split(minmax, ";")
    if len(specs) % 2:
        raise FormatError(f"Odd number of min/max specs for {owner}")
    pairs = [(_ispec(specs[i], f"{owner}/minspec"), _ispec(specs[i + 1], f"{owner}/maxspec"))
             for i in range(0, len(specs), 2)]
    for dt in _split(templates, ","):
        if dt not in TEMPLATES:
            raise FormatError(f"Invalid disk template {dt!r} in the policy of {owner or 'the cluster'}")
    return owner, IPolicy(pairs, _ispec(std, f"{owner}/stdspec"), _split(templates, ","),
                          _number(float, f"{owner}/vcpu_ratio", vcpu_ratio),
                          _number(float, f"{owner}/spindle_ratio", spindle_ratio))


def _sections(text: str) -> list[list[str]]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    sections: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line == "":
            sections.append(current)
            current = []
        else:
            current.append(line)
    if lines:
        sections.append(current)
    return sections


def parse(text: str) -> ClusterData:
    """The cluster a text file describes; FormatError names the first bad record."""
    sections = _sections(text)
    if len(sections) < 4:
        raise FormatError(f"Invalid format of the input file: {len(sections)} sections instead of 4 or more")
    glines, nlines, ilines, ctags = sections[:4]
    groups = [_group(line.split("|")) for line in glines]
    by_uuid = {g.uuid: g for g in groups}
    nodes = [_node(line.split("|"), by_uuid) for line in nlines]
    names = {n.name for n in nodes}
    instances = [_instance(line.split("|"), names) for line in ilines]
    ipolicy = default_ipolicy()
    by_name = {g.name: g for g in groups}
    for line in sections[4] if len(sections) > 4 else []:
        owner, policy = _ipolicy(line.split("|"))
        if not owner:
            ipolicy = policy
        elif owner in by_name:
            by_name[owner].ipolicy = policy
        else:
            raise FormatError(f"Unknown group {owner!r} in the policies")
    return ClusterData(groups, nodes, instances, list(ctags), ipolicy)


def load(path: str) -> ClusterData:
    with open(path, encoding="utf-8") as f:
        return parse(f.read())


# --- writing -----------------------------------------------------------------------------------

def _hs_double(x: float) -> str:
    """A Double as Haskell's printf %f writes it: all its digits, no exponent (1.0, 0.25)."""
    import numpy as np
    return np.format_float_positional(float(x), trim="0")


def _flag(value: bool) -> str:
    return "Y" if value else "N"


def _spec(spec: ISpec) -> str:
    return ",".join(str(v) for v in (spec.memory_size, spec.cpu_count, spec.disk_size, spec.disk_count,
                                     spec.nic_count, spec.spindle_use))


def _policy_line(owner: str, pol: IPolicy) -> str:
    minmax = ";".join(f"{_spec(lo)};{_spec(hi)}" for lo, hi in pol.minmax)
    return "|".join([owner, _spec(pol.std), minmax, ",".join(pol.disk_templates),
                     repr(float(pol.vcpu_ratio)), repr(float(pol.spindle_ratio))])


def node_line(n: Node) -> str:
    state = "Y" if n.offline else "M" if n.master else "N"
    return (f"{n.name}|{n.t_mem:.0f}|{n.n_mem}|{n.f_mem}|{n.t_dsk:.0f}|{n.f_dsk}|{n.t_cpu:.0f}|{state}|"
            f"{n.group}|{n.spindles}|{','.join(n.tags)}|{_flag(n.excl_storage)}|{n.free_spindles}|"
            f"{n.n_cpu}|{_hs_double(n.cpu_speed)}")


def instance_line(i: Instance) -> str:
    spindles = "-" if i.spindles is None else str(i.spindles)
    return (f"{i.name}|{i.mem}|{i.dsk}|{i.vcpus}|{i.status}|{_flag(i.auto_balance)}|{i.pnode}|"
            f"{i.snode or ''}|{i.template}|{','.join(i.tags)}|{i.spindle_use}|{spindles}|"
            f"{_flag(i.forthcoming)}")


def serialize(data: ClusterData) -> str:
    """The file Ganeti's hscan would write for this cluster (hbal -S writes the same)."""
    groups = "".join(f"{g.name}|{g.uuid}|{g.alloc_policy}|{','.join(g.tags)}|{','.join(g.networks)}\n"
                     for g in data.groups)
    nodes = "".join(node_line(n) + "\n" for n in data.nodes)
    insts = "".join(instance_line(i) + "\n" for i in data.instances)
    tags = "".join(t + "\n" for t in data.tags)
    policies = "".join(_policy_line(owner, pol) + "\n"
                       for owner, pol in [("", data.ipolicy)] + [(g.name, g.ipolicy) for g in data.groups])
    return "\n".join([groups, nodes, insts, tags, policies])
