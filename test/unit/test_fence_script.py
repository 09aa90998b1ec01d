"""genet-oob-script as genet runs it: a subprocess given COMMAND NODE, running the site's shell
commands from script.conf below the node's state root."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genet import oob

AGENT = Path(sys.executable).parent / "genet-oob-script"


@pytest.fixture
def site(tmp_path):
    """A state root whose script.conf records every command in ``calls`` and keeps each node's
    power in a file ``power-NODE`` (absent: on)."""
    conf = tmp_path / "root/etc/genet/oob/script.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(f"""[DEFAULT]
state = {tmp_path}
power-on = echo "on %(node)s" >> %(state)s/calls && rm -f %(state)s/power-%(node)s
power-off = echo "off %(node)s" >> %(state)s/calls && echo off > %(state)s/power-%(node)s && echo switched
power-status = test ! -e %(state)s/power-%(node)s
health = echo "PSU 1 OK"; echo; echo "Fan WARNING"

[node2]
power-cycle = echo "cycle %(node)s" >> %(state)s/calls
health = exit 3

[node4]
power-status = echo "pdu says what?" >&2; exit 7
health = echo "Fan maybe"
power-on =
""")
    return tmp_path


def agent(site: Path, command: str, node: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(AGENT), command, node], capture_output=True, text=True, timeout=30, cwd=site,
                          env={**os.environ, "GENET_ROOT": str(site / "root")})


def answer(proc: subprocess.CompletedProcess):
    assert (proc.returncode, proc.stderr) == (0, "")
    return json.loads(proc.stdout) if proc.stdout else None


def calls(site: Path) -> list[str]:
    return (site / "calls").read_text().splitlines()


def test_power_commands_run_the_nodes_commands_and_print_nothing(site):
    assert answer(agent(site, "power-status", "node3")) == {"powered": True}
    assert answer(agent(site, "power-off", "node3")) is None        # its "switched" is not an answer
    assert answer(agent(site, "power-status", "node3")) == {"powered": False}
    assert answer(agent(site, "power-on", "node3")) is None
    assert answer(agent(site, "power-status", "node3")) == {"powered": True}
    assert calls(site) == ["off node3", "on node3"]


def test_power_cycle_is_off_then_on_unless_the_node_has_its_own(site):
    assert answer(agent(site, "power-cycle", "node3")) is None
    assert answer(agent(site, "power-cycle", "node2")) is None
    assert calls(site) == ["off node3", "on node3", "cycle node2"]


def test_the_node_name_reaches_the_shell_as_one_quoted_word(site):
    answer(agent(site, "power-off", "x; touch pwned"))
    assert calls(site) == ["off 'x; touch pwned'"]       # (inside double quotes the quotes stay)
    assert not (site / "pwned").exists() and (site / "power-x; touch pwned").exists()


def test_health_reads_one_item_a_line(site):
    payload = answer(agent(site, "health", "node3"))
    assert payload == [["PSU 1", "OK"], ["Fan", "WARNING"]]
    oob.check_payload(oob.HEALTH, payload)


def test_failures_exit_1_with_the_commands_reason(site):
    conf = site / "root/etc/genet/oob/script.conf"
    proc = agent(site, "power-status", "node4")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == ("genet-oob-script: power-status node4: 'echo \"pdu says what?\" >&2; exit 7' exited with"
                           " code 7: pdu says what?\n")
    assert agent(site, "health", "node2").stderr == ("genet-oob-script: health node2: 'exit 3' exited with code 3:"
                                                     " no output\n")
    assert agent(site, "health", "node4").stderr == (
        "genet-oob-script: health node4: 'echo \"Fan maybe\"' printed 'Fan maybe', not 'ITEM STATUS' with STATUS"
        " one of OK, WARNING, CRITICAL, UNKNOWN\n")
    assert agent(site, "power-on", "node4").stderr == (f"genet-oob-script: power-on node4: no power-on command for"
                                                       f" this node in {conf}\n")
    conf.write_text("[DEFAULT]\npower-on = echo 100%\n")
    assert agent(site, "power-on", "node3").stderr.startswith(f"genet-oob-script: power-on node3: power-on in {conf}:"
                                                              " '%' must be followed by '%' or '('")
    conf.unlink()
    assert agent(site, "power-on", "node3").stderr == (f"genet-oob-script: power-on node3: cannot read the"
                                                       f" configuration {conf}: No such file or directory\n")
    proc = agent(site, "status", "node3")
    assert proc.returncode == 2 and proc.stderr.startswith("usage: genet-oob-script {power-on,power-off,")
