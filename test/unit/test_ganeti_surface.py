"""Ganeti's command surface, walked: every subcommand and option of Ganeti's gnt-* man pages
(test/unit/data/ganeti_surface.json, written by tools/ganeti-surface from Ganeti 3.1.1's man
pages) is run with --help and must be there, and every alias of Ganeti's answers.

data/ganeti_surface_todo.json is what genet does not have yet (issue 14 empties it): a name
that appears in genet must leave it, and nothing may go missing that is not in it. Running this
file (python test/unit/test_ganeti_surface.py) writes it anew and prints the coverage.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import pathlib
import re

import pytest

DATA = pathlib.Path(__file__).parent / "data"
SURFACE = json.loads((DATA / "ganeti_surface.json").read_text())["families"]
# family -> {subcommand: [options genet lacks]}; a subcommand mapped to null is missing whole
MISSING_FILE = DATA / "ganeti_surface_todo.json"
STILL_MISSING: dict[str, dict[str, list[str] | None]] = json.loads(MISSING_FILE.read_text())


def run_help(family: str, argv: list[str]) -> tuple[int, str]:
    try:
        module = importlib.import_module("genet.cli." + family.replace("-", "_"))
    except ModuleNotFoundError:
        return 2, ""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = module.main(argv)
        except SystemExit as exit:
            code = exit.code
    return code, out.getvalue()


def options_in(help_text: str) -> set[str]:
    """The option strings of argparse's option list: lines that start (indented) with a dash."""
    found = set()
    for line in help_text.splitlines():
        if re.match(r"^\s+-", line):
            found.update(re.findall(r"(?:^|, )(--?[A-Za-z][\w-]*)", line.strip()))
    return found


def missing_of(family: str) -> dict[str, list[str] | None]:
    missing: dict[str, list[str] | None] = {}
    for command, options in SURFACE[family]["commands"].items():
        code, text = run_help(family, [command, "--help"])
        if code != 0:
            missing[command] = None
            continue
        known = options_in(text)
        if absent := [o for o in options if o not in known]:
            missing[command] = absent
    return missing


def test_the_table_is_ganeti_31s_whole_surface():
    """132 subcommands in the 11 families the issue measured, 9 aliases."""
    assert sum(len(f["commands"]) for f in SURFACE.values()) == 132
    assert sum(len(f["aliases"]) for f in SURFACE.values()) == 9


@pytest.mark.parametrize("family", sorted(SURFACE))
def test_every_subcommand_and_option_of_ganetis_man_page(family):
    assert missing_of(family) == STILL_MISSING.get(family, {})


@pytest.mark.parametrize("family,alias,target", [(f, a, t) for f in sorted(SURFACE)
                                                 for a, t in SURFACE[f]["aliases"].items()])
def test_ganetis_aliases_run_their_command(family, alias, target):
    code, text = run_help(family, [alias, "--help"])
    if STILL_MISSING.get(family, {}).get(target, []) is None:      # comes with its command
        assert code != 0
        return
    assert code == 0
    assert options_in(text) == options_in(run_help(family, [target, "--help"])[1])


if __name__ == "__main__":
    todo = {family: missing for family in sorted(SURFACE) if (missing := missing_of(family))}
    MISSING_FILE.write_text(json.dumps(todo, indent=1) + "\n")
    commands = sum(len(f["commands"]) for f in SURFACE.values())
    options = sum(len(o) for f in SURFACE.values() for o in f["commands"].values())
    lacking = [(c, SURFACE[f]["commands"][c] if o is None else o) for f, m in todo.items() for c, o in m.items()]
    print(f"subcommands {commands - sum(o is None for f in todo.values() for o in f.values())}/{commands},"
          f" options {options - sum(len(o) for _, o in lacking)}/{options}")
