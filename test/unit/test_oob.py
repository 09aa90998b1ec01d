"""genet.oob: running an out-of-band program (PROGRAM COMMAND NODE) and reading its answer."""
from __future__ import annotations

import os
import time

import pytest

from genet import errors, oob


def program(tmp_path, body: str) -> str:
    path = tmp_path / "oob"
    path.write_text("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)
    return str(path)


def test_the_program_gets_command_and_node_and_its_json_is_the_answer(tmp_path):
    path = program(tmp_path, 'echo "{\\"powered\\": true, \\"args\\": \\"$1 $2\\"}"')
    assert oob.run(path, "power-status", "node2") == {"powered": True, "args": "power-status node2"}
    assert oob.run(program(tmp_path, "true"), "power-on", "node2") is None


def test_a_relative_or_missing_program_is_an_error_naming_it(tmp_path):
    with pytest.raises(errors.CommandError, match="out-of-band program 'bin/oob' is not an absolute path"):
        oob.run("bin/oob", "health", "node2")
    with pytest.raises(errors.CommandError, match=f"'{tmp_path}/none health node2' failed with reason"
                                                  " 'No such file or directory'"):
        oob.run(f"{tmp_path}/none", "health", "node2")


def test_a_program_past_its_timeout_is_stopped_with_its_children(tmp_path):
    """When the program outlives its timeout, it and the children holding its output are
    stopped at once, and the error says so."""
    path = program(tmp_path, "sleep 30 &\nsleep 30")
    start = time.monotonic()
    with pytest.raises(errors.CommandError, match="failed with reason 'terminated by signal 15, terminated after"
                                                  " timeout of 0.50 seconds'"):
        oob.run(path, "power-cycle", "node3", timeout=0.5)
    assert time.monotonic() - start < 5


def test_the_payload_check_accepts_what_each_command_answers():
    oob.check_payload(oob.HEALTH, [["Ambient Temp", "OK"], ["FAN", "UNKNOWN"]])
    oob.check_payload(oob.POWER_STATUS, {"powered": False})
    for command in oob.POWER_COMMANDS:
        oob.check_payload(command, None)
    with pytest.raises(errors.OpExecError, match="Check of out-of-band payload failed due to health item"
                                                 " \\['lonely'\\] is not an \\[item, status\\] pair"):
        oob.check_payload(oob.HEALTH, [["lonely"]])
