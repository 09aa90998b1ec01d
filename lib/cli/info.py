"""Ganeti's layout of the `info` commands: a YAML document, a list with one entry per object,
each an ordered list of ``key: value`` lines nested by two spaces. Ganeti's QA and admins'
scripts read it with a YAML loader, so the shape (and Ganeti's key names) is the interface.

The data is built of: ordered entries (a list of ``(key, value)`` tuples), dicts (written with
their keys sorted), lists (``- item``), tuples of plain values (``[a, b]``) and plain values
(written with ``str``, so None is ``None`` and booleans ``True``/``False``, as Ganeti's).
"""
from __future__ import annotations

import time
from typing import Any

INDENT = "  "


def dump(data: Any) -> str:
    """The text of ``data`` in Ganeti's layout (no trailing newline)."""
    out: list[str] = []
    _write(out, data, 0, after_key=False)
    return "".join(out).rstrip("\n")


def _plain(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple))


def _write(out: list[str], value: Any, level: int, after_key: bool) -> None:
    """Append ``value``; its first line continues the current one (after ``- `` or ``key: ``)."""
    if isinstance(value, dict):
        value = [(key, value[key]) for key in sorted(value)]
    if isinstance(value, tuple) and all(map(_plain, value)):
        out.append(f"[{', '.join(map(str, value))}]\n")
        return
    if not isinstance(value, (list, tuple)):
        out.append(f"{value}\n")
        return
    if not value:
        out.append("\n")
        return
    entries = isinstance(value[0], tuple)
    for i, item in enumerate(value):
        if i or after_key:
            out.append(("\n" if i == 0 else "") + INDENT * level)
        if entries:
            key, item = item
            out.append(f"{key}: ")
            _write(out, item, level + 1, after_key=True)
        else:
            out.append("- ")
            _write(out, item, level + 1, after_key=False)


def params(own: dict, actual: dict, roman: bool = False) -> dict:
    """Parameters as Ganeti shows them: a value set on the object itself as it is, an inherited one
    as ``default (value)``; a nested dict of parameters the same way."""
    shown = {}
    for key, value in actual.items():
        if isinstance(value, dict) and value:
            shown[key] = params(own.get(key, {}), value, roman)
        elif key in own:
            shown[key] = str(number(own[key], roman))
        else:
            shown[key] = f"default ({number(value, roman)})"
    return shown


def timestamp(value: float | None) -> str:
    """Ganeti's time format of the info commands (local time, "2026-12-07 04:10:00")."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "N/A"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def size(mib: int | float, roman: bool = False) -> str:
    """A size in MiB as Ganeti's "h" unit shows it (512M, 1.0G, 2.5T); with ``roman``, the
    rounded number in Roman numerals."""
    from genet.cli.units import format_unit
    if not roman:
        return format_unit(mib, "h")
    if mib < 1024:
        return f"{number(round(mib), roman)}M"
    value, suffix = (mib / 1024, "G") if mib < 1024 ** 2 else (mib / 1024 ** 2, "T")
    return f"{number(round(value), roman)}{suffix}"


_ROMAN = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
          (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))


def number(value: Any, roman: bool) -> Any:
    """With ``--roman``, a whole number from 1 to 3999 in Roman numerals (Ganeti's option); any
    other value as it is."""
    if not roman or isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 4000:
        return value
    text = ""
    for amount, letters in _ROMAN:
        count, value = divmod(value, amount)
        text += letters * count
    return text
