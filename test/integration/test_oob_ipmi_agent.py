"""genet-oob-ipmi as genet runs it (a subprocess: COMMAND NODE, JSON or a reason, an exit code)
against a BMC that speaks real IPMI over LAN on 127.0.0.1 (fake_bmc.py, pyghmi's BMC server)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genet import oob

HERE = Path(__file__).resolve().parent
AGENT = Path(sys.executable).parent / "genet-oob-ipmi"


class FakeBmc:
    """fake_bmc.py running; ``said()`` is what its chassis did so far."""

    def __init__(self, tmp: Path, *options: str):
        self.log = tmp / f"bmc-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "fake_bmc.py"), "--user", "admin",
                                      "--password", "s3cret", *options], stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.lines():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)
        self.port = int(self.lines()[0])

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def said(self) -> list[str]:
        return self.lines()[1:]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def root(tmp_path):
    """A node's state root holding ipmi.conf; node3's password file written, node4 without one."""
    conf = tmp_path / "root/etc/genet/oob"
    conf.mkdir(parents=True)
    (conf / "node3.pw").write_text("s3cret\n")
    (conf / "wrong.pw").write_text("guess\n")
    return tmp_path / "root"


def write_conf(root: Path, port: int, **extra: str) -> None:
    sections = {"node3": {"address": "127.0.0.1", "port": str(port), "user": "admin", "password_file": "node3.pw",
                          "timeout": "3"},
                "node4": {"address": "127.0.0.1", "port": str(port), "user": "admin",
                          "password_file": str(root / "etc/genet/oob/absent.pw")},
                "node5": {"address": "127.0.0.1", "port": str(port), "user": "admin", "password_file": "wrong.pw"},
                "node6": {"address": "127.0.0.1", "user": "admin"}}
    sections["node3"].update(extra)
    (root / "etc/genet/oob/ipmi.conf").write_text("".join(
        f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for name, keys in sections.items()))


def agent(root: Path, command: str, node: str = "node3") -> subprocess.CompletedProcess:
    return subprocess.run([str(AGENT), command, node], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GENET_ROOT": str(root)})


@pytest.fixture
def bmc(tmp_path, root):
    server = FakeBmc(tmp_path)
    write_conf(root, server.port)
    yield server
    server.stop()


def answer(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_power_status_off_on_and_cycle_drive_the_bmcs_chassis(bmc, root):
    assert answer(agent(root, "power-status")) == {"powered": True}
    assert answer(agent(root, "power-off")) is None
    assert answer(agent(root, "power-status")) == {"powered": False}
    assert answer(agent(root, "power-on")) is None
    assert answer(agent(root, "power-status")) == {"powered": True}
    assert answer(agent(root, "power-cycle")) is None        # off (confirmed), then on
    assert answer(agent(root, "power-status")) == {"powered": True}
    assert bmc.said() == ["power_off", "power_on", "power_off", "power_on"]


def test_power_off_returns_once_the_power_is_really_off(tmp_path, root):
    slow = FakeBmc(tmp_path, "--off-delay", "1.5")
    try:
        write_conf(root, slow.port)
        start = time.monotonic()
        assert answer(agent(root, "power-off")) is None
        assert time.monotonic() - start >= 1.5
        assert answer(agent(root, "power-status")) == {"powered": False}
    finally:
        slow.stop()


def test_power_off_that_never_happens_fails_after_the_timeout(tmp_path, root):
    stuck = FakeBmc(tmp_path, "--stuck")
    try:
        write_conf(root, stuck.port)
        proc = agent(root, "power-off")
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr == (f"genet-oob-ipmi: power-off node3: the BMC at 127.0.0.1:{stuck.port} took the"
                               " power-off but still reports the power on after 3 s\n")
    finally:
        stuck.stop()


def test_health_lists_every_sensor_with_its_status(bmc, root):
    payload = answer(agent(root, "health"))
    assert payload == [["Inlet Temp", "OK"], ["CPU Temp", "CRITICAL"]]
    oob.check_payload(oob.HEALTH, payload)          # what the master accepts


def test_a_wrong_password_is_refused_with_the_bmcs_reason(bmc, root):
    proc = agent(root, "power-status", "node5")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (f"genet-oob-ipmi: power-status node5: the BMC at 127.0.0.1:{bmc.port} refused the"
                           " login of 'admin': Incorrect password provided\n")
    assert bmc.said() == []


def test_an_unreachable_bmc_fails_in_seconds_and_says_so(root):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:      # a port nobody answers on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        write_conf(root, port)
        start = time.monotonic()
        proc = agent(root, "power-off")
    assert time.monotonic() - start < 20
    assert proc.returncode == 1
    assert proc.stderr == (f"genet-oob-ipmi: power-off node3: the BMC at 127.0.0.1:{port}"
                           " does not answer (IPMI over LAN, UDP)\n")


def test_configuration_faults_name_the_problem(bmc, root):
    conf = root / "etc/genet/oob/ipmi.conf"
    proc = agent(root, "power-status", "node9")
    assert (proc.returncode, proc.stderr) == (1, f"genet-oob-ipmi: power-status node9: no section [node9] for this"
                                                 f" node in {conf}\n")
    proc = agent(root, "power-status", "node4")
    assert proc.stderr == (f"genet-oob-ipmi: power-status node4: cannot read the BMC password file"
                           f" {root}/etc/genet/oob/absent.pw: No such file or directory\n")
    proc = agent(root, "power-status", "node6")
    assert proc.stderr == f"genet-oob-ipmi: power-status node6: [node6] in {conf} lacks password_file\n"
    conf.unlink()
    proc = agent(root, "power-status")
    assert proc.stderr == (f"genet-oob-ipmi: power-status node3: cannot read the configuration {conf}:"
                           " No such file or directory\n")
    proc = agent(root, "reboot")
    assert proc.returncode == 2 and "usage: genet-oob-ipmi" in proc.stderr
    assert bmc.said() == []
