"""Sizes in list output as Ganeti shows them (its utils.FormatUnit): a value in MiB, in the
unit asked for with ``--units`` (m, g, t; h scales it and says which), by default h for
people and m when a separator makes the output for scripts."""
from __future__ import annotations

UNITS = ("h", "m", "g", "t")


def default_unit(separator: str | None) -> str:
    """What ``--units`` is when not given: MiB for output that has a separator, else scaled."""
    return "m" if separator else "h"


def format_unit(mib: float, unit: str) -> str:
    """``mib`` in ``unit``: whole MiB, or GiB and TiB with one decimal; with ``h`` the largest
    of M, G, T that keeps the number at least 1, with its letter."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} (one of {', '.join(UNITS)})")
    if unit == "m" or (unit == "h" and mib < 1024):
        return f"{mib:0.0f}" + ("M" if unit == "h" else "")
    if unit == "g" or (unit == "h" and mib < 1024 * 1024):
        return f"{mib / 1024:0.1f}" + ("G" if unit == "h" else "")
    return f"{mib / 1024 / 1024:0.1f}" + ("T" if unit == "h" else "")
