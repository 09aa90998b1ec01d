"""Hypervisor parameters: a backend declares its table (name -> Param) and the checks and
defaults come from it (Hypervisor.check_parameters / fill_parameters).

A Param checks its own value (``choices``, ``check``) and, with ``relation``, its value
against the other parameters once every default is filled in (Ganeti's cross-parameter
syntax checks: a security domain only with security model ``user``, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from genet.hypervisor.base import HypervisorError


@dataclass(frozen=True)
class Param:
    kind: type                      # str, bool or int
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None   # returns a complaint or None
    choices: tuple = ()             # the only values allowed, when not empty
    relation: Callable[[Any, dict], str | None] | None = None  # (value, all filled params) -> complaint


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(name: str, kind: type, value: Any) -> Any:
    """Accept the value or its string form (the CLI sends strings), else refuse."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif isinstance(value, str):
        return value
    raise HypervisorError(f"hvparam {name!r}: expected {kind.__name__}, got {value!r}")


def _complaint(param: Param, value: Any) -> str | None:
    if param.choices and value not in param.choices:
        shown = [repr(c) if c == "" else str(c) for c in param.choices]
        return f"must be one of {', '.join(shown)}"
    return param.check(value) if param.check is not None else None


def check(hvparams: dict, table: dict[str, Param]) -> None:
    """Refuse unknown names (all named at once), malformed values and values that contradict
    another parameter (defaults filled in)."""
    unknown = sorted(set(hvparams) - set(table))
    if unknown:
        raise HypervisorError(f"unknown hvparams: {', '.join(unknown)} (known: {', '.join(sorted(table))})")
    for name, value in hvparams.items():
        value = _coerce(name, table[name].kind, value)
        if complaint := _complaint(table[name], value):
            raise HypervisorError(f"hvparam {name!r}={value!r} {complaint}")
    filled = {name: _coerce(name, p.kind, hvparams.get(name, p.default)) for name, p in table.items()}
    for name, param in table.items():
        if param.relation is not None and (complaint := param.relation(filled[name], filled)):
            raise HypervisorError(f"hvparam {name!r}={filled[name]!r} {complaint}")


def fill(hvparams: dict, table: dict[str, Param]) -> dict[str, Any]:
    """Checked hvparams with every default filled in and every value typed."""
    check(hvparams, table)
    return {name: _coerce(name, p.kind, hvparams.get(name, p.default)) for name, p in table.items()}
