"""Reading the info commands' output as Ganeti's tools do: a YAML document, one entry per object."""
from __future__ import annotations

import re

import yaml


def parsed(text: str) -> list[dict]:
    return yaml.safe_load(text)


def mirror_sides(text: str) -> list[tuple[str, str, str | None]]:
    """(primary, secondaries, mirror state) of each disk of the one instance ``text`` describes."""
    [inst] = parsed(text)
    primary, secondaries = inst["Nodes"][0]["primary"], inst["Nodes"][1]["secondaries"] or ""
    # "node2 (group default, group UUID ...), node3 (...)", as Ganeti's QA reads it
    names = ",".join(re.findall(r"([^,()\s]+)(?:\s+\([^)]*\))?", secondaries))
    return [(primary, names, disk.get("mirror state")) for disk in inst["Disks"] or []]
