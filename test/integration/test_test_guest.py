"""The tiny test guest (tools/build-test-guest, genet_dev.testguest) boots for real under QEMU.

Each test starts qemu-system-x86_64 directly (TCG, 256 MiB, 1 vCPU) with the guest's kernel
and initrd, the serial console on QEMU's stdio (pipes), and no network unless the test
makes one inside a network namespace of its own.  Nothing is skipped: the guest is built
into its cache first if it is missing (that needs apt to reach the package mirror).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from genet_dev import testguest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "build-test-guest"
QEMU = "qemu-system-x86_64"
BOOT_TIMEOUT = 30.0
GUEST_NET = ("10.99.0.1/24", "10.99.0.2/24")   # host side (tap in our netns), guest


@pytest.fixture(scope="module")
def guest() -> dict:
    return testguest.ensure()


class Qemu:
    """A QEMU process whose serial console is its stdin/stdout."""

    def __init__(self, guest: dict, tmp: Path, args: list[str] = (), append: str = "",
                 prefix: list[str] = (), qmp: bool = False):
        self.qmp_path = tmp / "qmp.sock" if qmp else None
        cmd = [*prefix, QEMU, "-accel", "tcg", "-m", "256", "-smp", "1",
               "-display", "none", "-monitor", "none", "-serial", "stdio",
               "-kernel", guest["kernel"], "-initrd", guest["initrd"],
               "-append", f"{guest['kernel_args_base']} {append}".strip(), *args]
        if self.qmp_path:
            cmd += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        self.cmd = cmd
        self.buf = b""
        self.cond = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.token = 0

    def _read(self) -> None:
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            with self.cond:
                if not chunk:
                    self.cond.notify_all()
                    return
                self.buf += chunk
                self.cond.notify_all()

    @property
    def text(self) -> str:
        with self.cond:
            return self.buf.decode("utf-8", "replace")

    def expect(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                match = regex.search(self.buf, start)
                if match:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(
                        f"no {pattern!r} on the serial console within {timeout} s "
                        f"(qemu exit={self.proc.poll()}); console so far:\n{self.text[-3000:]}")
                self.cond.wait(min(left, 0.5))

    def wait_ready(self) -> float:
        """Seconds from QEMU's start to the ready marker; returns the guest's uptime too."""
        m = self.expect(rf"{testguest.READY_MARKER} uptime=([0-9.]+)\r?\n", BOOT_TIMEOUT)
        self.boot_seconds = time.monotonic() - self.started
        self.guest_uptime = float(m.group(1))
        return self.boot_seconds

    def sh(self, command: str, timeout: float = 20.0) -> str:
        """Run ``command`` in the guest's serial shell; returns its output (\\r removed).

        The output is framed by two lines the shell computes ($((0)) -> 0), so the echo
        of the typed line itself never matches.
        """
        self.token += 1
        tag = f"GT{self.token}x{secrets.token_hex(3)}"
        with self.cond:
            start = len(self.buf)
        self.send(f"echo {tag}B$((0)); {command}; echo {tag}E$((0))\n")
        end = self.expect(rf"{tag}E0\r?\n", timeout, start)
        begin = self.expect(rf"{tag}B0\r?\n", 0.1, start)
        with self.cond:
            out = self.buf[begin.end():end.start()]
        return out.decode("utf-8", "replace").replace("\r", "")

    def send(self, data: str) -> None:
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def qmp(self, *commands: str) -> list[dict]:
        """Send QMP commands over a fresh connection; returns their answers."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qmp_path))
            stream = sock.makefile("rw")
            greeting = json.loads(stream.readline())
            assert "QMP" in greeting, greeting
            answers = []
            for command in ("qmp_capabilities", *commands):
                stream.write(json.dumps({"execute": command}) + "\n")
                stream.flush()
                while True:
                    reply = json.loads(stream.readline())
                    if "event" not in reply:
                        break
                answers.append(reply)
            return answers

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.reader.join(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def qemus():
    started: list[Qemu] = []
    yield started
    for q in started:
        q.stop()


def boot(qemus, guest, tmp_path, **kw) -> Qemu:
    q = Qemu(guest, tmp_path, **kw)
    qemus.append(q)
    q.wait_ready()
    print(f"\nboot: ready marker after {q.boot_seconds:.2f} s (guest uptime "
          f"{q.guest_uptime:.2f} s): {' '.join(q.cmd)}")
    return q


def test_build_is_cached_and_outside_the_repo(guest):
    cache = Path(guest["cache"])
    assert ROOT not in cache.resolve().parents
    manifest = json.loads((cache / "manifest.json").read_text())
    for name in testguest.FILES:
        assert manifest["files"][name]["sha256"] == testguest.sha256_file(cache / name)
    assert manifest["kernel_version"].endswith("-cloud-amd64")
    assert (cache / "disk.raw").stat().st_size == 64 << 20
    assert (cache / "disk.raw").read_bytes()[:16] == b"GENET-TEST-DISK\n"
    # a second run changes nothing and prints the cache directory
    before = (cache / "manifest.json").stat().st_mtime_ns
    env = {**os.environ, testguest.CACHE_ENV: str(cache)}
    out = subprocess.run([sys.executable, str(TOOL)], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == str(cache)
    assert (cache / "manifest.json").stat().st_mtime_ns == before


def test_boot_shell_disk_and_poweroff(guest, qemus, tmp_path):
    raw = tmp_path / "disk.raw"
    qcow = tmp_path / "disk.qcow2"
    shutil.copyfile(guest["disk_raw"], raw)
    shutil.copyfile(guest["disk_qcow2"], qcow)
    q = boot(qemus, guest, tmp_path, args=[
        "-nic", "none",
        "-drive", f"file={raw},if=virtio,format=raw",
        "-drive", f"file={qcow},if=virtio,format=qcow2"])
    assert q.boot_seconds < BOOT_TIMEOUT

    uptime = q.sh("cat /proc/uptime").split()
    assert float(uptime[0]) >= q.guest_uptime
    # both disks are there; the qcow2 one shows the same header as the raw one
    assert "GENET-TEST-DISK" in q.sh("head -c 16 /dev/vda")
    assert "GENET-TEST-DISK" in q.sh("head -c 16 /dev/vdb")
    q.sh("echo MARKER123 | dd of=/dev/vda bs=512 seek=100 conv=fsync")
    q.send("poweroff -f\n")
    assert q.wait_exit(20) == 0
    data = raw.read_bytes()
    assert data[:16] == b"GENET-TEST-DISK\n"
    assert data[100 * 512:100 * 512 + 10] == b"MARKER123\n"


def test_acpi_powerdown(guest, qemus, tmp_path):
    q = boot(qemus, guest, tmp_path, qmp=True)     # QEMU's defaults: pc machine, ACPI on
    answers = q.qmp("system_powerdown")
    assert answers == [{"return": {}}, {"return": {}}]
    t0 = time.monotonic()
    assert q.wait_exit(60) == 0       # ~1 s idle; far more on a loaded 2-core machine (TCG)
    print(f"\nacpi: QEMU exited {time.monotonic() - t0:.2f} s after system_powerdown")
    assert "ACPI power button: powering off" in q.text


@pytest.fixture
def netns():
    name = f"gtg{os.getpid()}{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        def nsrun(*argv: str, check: bool = True, timeout: float = 30):
            return subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True,
                                  text=True, check=check, timeout=timeout)
        nsrun("ip", "link", "set", "lo", "up")
        nsrun("ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
        nsrun("ip", "addr", "add", GUEST_NET[0], "dev", "tap0")
        nsrun("ip", "link", "set", "tap0", "up")
        yield name, nsrun
    finally:
        # the tap goes with the namespace (callers stop QEMU first: qemus is torn down
        # before this fixture because it is requested after it)
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_network_in_netns(guest, netns, qemus, tmp_path):
    name, nsrun = netns
    host_ip = GUEST_NET[0].split("/")[0]
    guest_ip = GUEST_NET[1].split("/")[0]
    q = boot(qemus, guest, tmp_path, prefix=["ip", "netns", "exec", name],
             append=f"genet.ip={GUEST_NET[1]} genet.gw={host_ip}",
             args=["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                   "-device", "virtio-net-pci,netdev=n0"])
    assert f"inet {GUEST_NET[1]}" in q.sh("ip -4 addr show dev eth0")
    assert f"default via {host_ip}" in q.sh("ip route")
    deadline = time.monotonic() + 15
    while True:
        ping = nsrun("ping", "-c", "1", "-W", "1", guest_ip, check=False)
        if ping.returncode == 0:
            break
        assert time.monotonic() < deadline, f"guest never answered ping:\n{ping.stdout}"
    assert "1 packets received" in q.sh(f"ping -c 1 -W 3 {host_ip}")
    q.send("poweroff -f\n")
    assert q.wait_exit(20) == 0
