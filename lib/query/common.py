"""What every query resource shares: the field record, result statuses, kinds, the common fields,
aliases, field definitions, filters and the loop that turns objects into rows.

A field's getter takes the object and the query's context and returns the value, or one of the
statuses below when there is none (Ganeti's RS_*: the node is offline, did not answer, the value
does not apply to this object).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, NamedTuple

from genet import errors, qfilter

RS_NORMAL, RS_UNKNOWN, RS_NODATA, RS_UNAVAIL, RS_OFFLINE = 0, 1, 2, 3, 4

# Ganeti's kinds (QFT_*): how a value is checked and shown
KINDS = ("text", "bool", "number", "float", "unit", "timestamp", "other")


class Status:
    """A value that is not there, and why (one of the RS_* codes)."""

    def __init__(self, code: int, name: str):
        self.code, self.name = code, name

    def __repr__(self) -> str:
        return self.name


NODATA = Status(RS_NODATA, "NODATA")        # the node holding the data did not answer
UNAVAIL = Status(RS_UNAVAIL, "UNAVAIL")     # the value does not apply (no 3rd disk, NIC not bridged)
OFFLINE = Status(RS_OFFLINE, "OFFLINE")     # the node holding the data is marked offline


class Field(NamedTuple):
    title: str
    kind: str
    doc: str
    get: Callable[[Any, Any], Any]           # (object, query context) -> value or a Status
    live: bool = False                       # asked from the nodes, only when shown or filtered on


Table = dict[str, Field]

# the parameter types of genet.ptypes (by their name) and of hypervisor Params (by Python type)
# as Ganeti's kinds: its VTYPE_STRING is "other", since a string parameter may be empty
_PTYPE_KINDS = {"bool": "bool", "int": "number", "float": "float", "size": "unit"}
_PYTHON_KINDS = {bool: "bool", int: "number", float: "float"}


def kind_of_ptype(ptype) -> str:
    """The kind of a field showing a parameter of type ``ptype`` (a genet.ptypes type)."""
    inner = getattr(ptype, "inner", None)          # Maybe(...) shows as its inner type
    return kind_of_ptype(inner) if inner is not None else _PTYPE_KINDS.get(ptype.name, "other")


def kind_of_python_type(kind: type) -> str:
    return _PYTHON_KINDS.get(kind, "other")


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st (Ganeti's field docs say "of 2nd disk")."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def attr(key: str, missing: Any = UNAVAIL) -> Callable[[Any, Any], Any]:
    """The getter of a field that is one key of the object; ``missing`` when the key is absent or null."""
    def get(obj, ctx):
        value = obj.get(key)
        return missing if value is None else value
    return get


def common_fields(noun: str, *, forthcoming: bool = False, serial: bool = True) -> Table:
    """The fields every config object has (Ganeti's timeStampFields, uuidFields, serialFields, tagsFields)."""
    fields = {
        "ctime": Field("CTime", "timestamp", "Creation timestamp", attr("ctime")),
        "mtime": Field("MTime", "timestamp", "Modification timestamp", attr("mtime")),
        "uuid": Field("UUID", "text", f"{noun} UUID", attr("uuid")),
        "tags": Field("Tags", "other", "Tags", lambda o, c: list(o.get("tags") or [])),
    }
    if serial:
        fields["serial_no"] = Field("SerialNo", "number",
                                    f"{noun} object serial number, incremented on each modification",
                                    lambda o, c: o.get("serial_no", 1))
    if forthcoming:
        fields["forthcoming"] = Field("Forthcoming", "bool", f"Whether the {noun} is forthcoming",
                                      lambda o, c: bool(o.get("forthcoming", False)))
    return fields


def param_fields(prefix: str, group: str, kinds: dict[str, str], titles: dict[str, str],
                 getter: Callable[[str], Callable[[Any, Any], Any]]) -> Table:
    """One field per parameter of a family (hv/, be/, ndp/): Ganeti's title where it has one,
    else the field's name; the doc says which parameter it is."""
    return {f"{prefix}/{name}": Field(titles.get(name, f"{prefix}/{name}"), kind,
                                      f'The "{name}" {group} parameter', getter(name))
            for name, kind in sorted(kinds.items())}


def with_aliases(fields: Table, aliases: Iterable[tuple[str, str]]) -> Table:
    """``fields`` plus each alias, a copy of its target under another name (Ganeti's aliasFields)."""
    out = dict(fields)
    for alias, target in aliases:
        out[alias] = fields[target]
    return out


def nice_key(name: str) -> list:
    """Sort key putting numbers in order ("disk.size/2" before "disk.size/10"), as Ganeti's NiceSort."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def definitions(table: Table, names: list[str] | None) -> list[dict]:
    """Field definitions, Ganeti's shape; all of them (in Ganeti's natural order) when no names are
    given, and an unknown name as kind "unknown"."""
    if not names:
        names = sorted(table, key=nice_key)
    return [_definition(table, name) for name in names]


def _definition(table: Table, name: str) -> dict:
    field = table.get(name)
    if field is None:
        return {"name": name, "title": name, "kind": "unknown", "doc": f"Unknown field '{name}'"}
    return {"name": name, "title": field.title, "kind": field.kind, "doc": field.doc}


def filter_fields(qfilter_list: Any) -> set[str]:
    """Field names a filter refers to."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, list) and node:
            op = node[0]
            if op in ("&", "|", "!"):
                for child in node[1:]:
                    walk(child)
            elif len(node) >= 2 and isinstance(node[1], str):
                found.add(node[1])
    walk(qfilter_list)
    return found


def compile_filter(what: str, table: Table | set[str], qfilter_list: Any) -> Callable[[dict], bool]:
    """The predicate of a filter over ``table``'s fields; an unknown field is a ParameterError
    (exit code 14), a malformed filter an OpPrereqError."""
    try:
        unknown = sorted(filter_fields(qfilter_list) - set(table))
    except TypeError:
        unknown = []
    if unknown:
        raise errors.ParameterError(f"unknown {what} field(s) in filter: {', '.join(unknown)}")
    try:
        return qfilter.compile_filter(qfilter_list, set(table))
    except qfilter.FilterError as err:
        raise errors.OpPrereqError(f"invalid filter: {err}", errors.ECode.INVAL) from None


def result(value: Any) -> list:
    """[status, value] as a query row holds it."""
    return [value.code, None] if isinstance(value, Status) else [RS_NORMAL, value]


def build_rows(what: str, table: Table, objects: Iterable[Any], ctx: Any, fields: list[str],
               qfilter_list: Any) -> dict:
    """The query answer for ``objects`` (in the order given): each field's getter runs once per
    object, for the fields shown and those the filter names."""
    predicate = compile_filter(what, table, qfilter_list)
    wanted = list(dict.fromkeys([*fields, *sorted(filter_fields(qfilter_list))]))
    getters = [(name, table[name].get) for name in wanted if name in table]
    unknown = {name: [RS_UNKNOWN, None] for name in wanted if name not in table}
    rows = []
    for obj in objects:
        values = dict(unknown)
        for name, get in getters:
            values[name] = result(get(obj, ctx))
        if qfilter_list is None or predicate({k: v for k, (_, v) in values.items()}):
            rows.append([values[f] for f in fields])
    return {"fields": definitions(table, fields), "data": rows}
