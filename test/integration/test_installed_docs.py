"""After install-deps, genet's man pages and bash completion are where man and bash-completion
look for them, as they are after installing Ganeti's package: `man gnt-instance` works for a
user whose PATH has the virtualenv's bin, and TAB completes gnt-* commands.

Run in the virtualenv install-deps made (the tests' interpreter's).
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

VENV = Path(sys.prefix)
BIN = Path(sys.executable).parent
COMMANDS = sorted(ep.name for ep in importlib.metadata.distribution("genet").entry_points
                  if ep.group == "console_scripts")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
MAN_SOURCES = Path(__file__).resolve().parents[2] / "man"
# each command's manual section, as its page's title says (``hbal(1) genet``: the htools are 1,
# the administration commands 8)
SECTIONS = {name: int(re.match(r"[\w-]+\((\d)\)", (MAN_SOURCES / f"{name}.rst").read_text()).group(1))
            for name in COMMANDS if (MAN_SOURCES / f"{name}.rst").exists()}


def user_env(**extra: str) -> dict[str, str]:
    """A user's environment: the virtualenv's bin first on PATH, no MANPATH of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("MANPATH", "XDG_DATA_DIRS", "GENET_ROOT")}
    return {**env, "PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "MANWIDTH": "100", **extra}


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=user_env(), check=True, **kwargs)


def test_man_finds_the_page_of_every_installed_command_from_path():
    assert len(COMMANDS) >= 15 and "gnt-instance" in COMMANDS
    found = {name: Path(run(["man", "-w", name]).stdout.strip()) for name in [*COMMANDS, "genet", "htools"]}
    man = VENV.resolve() / "share/man"
    assert {name: path.resolve().relative_to(man).as_posix() for name, path in found.items()} == {
        **{name: f"man{SECTIONS.get(name, 8)}/{name}.{SECTIONS.get(name, 8)}" for name in COMMANDS},
        "genet": "man7/genet.7", "htools": "man1/htools.1"}


def test_every_installed_page_renders_without_complaint():
    for name, section in [*((c, SECTIONS.get(c, 8)) for c in COMMANDS), ("genet", 7), ("htools", 1)]:
        result = run(["man", "-P", "cat", name])
        assert result.stderr == "", name
        assert result.stdout.splitlines()[0].split() == [f"{name}({section})", "genet", f"{name}({section})"]
    text = run(["man", "-P", "cat", "gnt-instance"]).stdout
    assert "gnt-instance - genet instance administration" in text
    for heading in ("SYNOPSIS", "DESCRIPTION", "COMMANDS", "SEE ALSO"):
        assert f"\n{heading}\n" in text
    assert "--migration-mode" in text


def test_bash_completion_loads_the_installed_completion_and_completes():
    """bash-completion's loader finds the file when the virtualenv's share is a data dir (as
    /usr/local/share is for a system-wide install); it completes subcommands and the OS
    definitions installed with genet."""
    script = f"""
source {BASH_COMPLETION}
_completion_loader gnt-instance
complete -p gnt-instance
COMP_WORDS=(gnt-instance mig); COMP_CWORD=1; _genet_complete; echo "${{COMPREPLY[*]}}"
COMP_WORDS=(gnt-instance add -o ''); COMP_CWORD=3; _genet_complete; echo "${{COMPREPLY[*]}}"
"""
    env = user_env(XDG_DATA_DIRS=f"{VENV}/share:/usr/share", GENET_ROOT=str(VENV / "no-cluster"))
    result = subprocess.run(["bash", "--norc", "--noprofile"], input=script, capture_output=True, text=True,
                            env=env, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "complete -F _genet_complete gnt-instance"
    assert lines[1] == "migrate"
    assert {"noop", "image"} <= set(lines[2].split())
    installed = VENV / "share/bash-completion/completions"
    assert sorted(p.name for p in installed.iterdir() if p.name in COMMANDS) == COMMANDS
