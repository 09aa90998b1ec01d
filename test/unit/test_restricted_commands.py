"""Restricted commands on a node (genet.restricted_commands): only a plain name of an executable in
the node's restricted-commands directory, both root's (here: the test user's) and written by no
one else, runs, without arguments or environment; a refusal says nothing but that it failed, and
only after the delay."""
from __future__ import annotations

import os
import re

import pytest

from genet import errors, paths, restricted_commands

OWNER = (os.getuid(), os.getgid())


@pytest.fixture
def commands(tmp_path):
    with paths.acting_as(tmp_path, "node1"):
        directory = paths.restricted_commands_dir()
        directory.mkdir(parents=True)
        os.chmod(directory, 0o755)
        yield directory


def add(directory, name: str, body: str, mode: int = 0o755):
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    os.chmod(path, mode)
    return path


def run(cmd: str) -> tuple[str, list[float]]:
    slept: list[float] = []
    return restricted_commands.run(cmd, owner=OWNER, sleep=slept.append), slept


def test_a_command_runs_without_environment_and_returns_its_output(commands, monkeypatch):
    """When the command passes the checks, it runs in an empty environment (LC_ALL=C alone) and
    its standard output, then its error output, come back."""
    monkeypatch.setenv("NODED_SECRET", "leaked")
    add(commands, "show-env", "echo \"secret=${NODED_SECRET:-unset} lc=$LC_ALL\"; echo oops >&2")
    assert run("show-env") == ("secret=unset lc=C\noops\n", [])


def test_a_failing_command_is_reported_with_its_exit_code_and_output(commands):
    add(commands, "fail", "echo half done; exit 4")
    with pytest.raises(errors.CommandError, match="Restricted command 'fail' failed: exited with exit code 4;"
                                                  " output: half done"):
        run("fail")


@pytest.mark.parametrize("name, reason", [
    ("missing", "Can't stat\\(2\\)"),
    ("../fail", "Invalid command name"),
    ("with space", "Command name contains forbidden characters"),
    ("writable", "Permissions on '.*writable' are too permissive"),
    ("noexec", "access\\(2\\) thinks"),
])
def test_a_refused_command_fails_after_the_delay_without_saying_why(commands, caplog, name, reason):
    """When a name or file fails a check, the answer is only that it failed, after the delay;
    the reason is in the node's log."""
    add(commands, "writable", "echo no", mode=0o775)
    add(commands, "noexec", "echo no", mode=0o644)
    slept: list[float] = []
    with pytest.raises(errors.CommandError) as info:
        restricted_commands.run(name, owner=OWNER, sleep=slept.append)
    assert str(info.value) == f"Executing command '{name}' failed"
    assert slept == [restricted_commands.INVALID_DELAY]
    assert caplog.records and re.search(reason, caplog.records[-1].getMessage())


def test_a_directory_not_owned_by_root_or_open_to_others_is_refused(commands, caplog):
    add(commands, "ok", "echo fine")
    with pytest.raises(errors.CommandError):
        restricted_commands.run("ok", owner=(OWNER[0] + 1, OWNER[1]), sleep=lambda _: None)
    assert "is not owned by" in caplog.records[-1].getMessage()
    os.chmod(commands, 0o777)
    with pytest.raises(errors.CommandError):
        run("ok")
    assert "too permissive" in caplog.records[-1].getMessage()
