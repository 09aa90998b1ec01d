"""What the kvm backend tells a freshly started QEMU over QMP before its guest runs
(KvmHypervisor._after_launch): passwords, vCPU pinning, where the remote display listens."""
from __future__ import annotations

from genet.hypervisor.kvm import KvmHypervisor, cpus
from genet.hypervisor.kvm.prereq import Resolved
from genet.hypervisor.kvm.runtime import Runtime


class Recorder:
    def __init__(self):
        self.calls: list[tuple[str, dict | None]] = []

    def execute(self, cmd: str, args: dict | None = None):
        self.calls.append((cmd, args))
        return {"query-cpus-fast": [{"cpu-index": 0, "thread-id": 4242}],
                "query-vnc": {"family": "ipv4", "host": "127.0.0.1", "service": "5901"},
                "query-spice": {"host": "127.0.0.1", "port": 6003}}.get(cmd, {})


def launch(tmp_path, monkeypatch, resolved: Resolved) -> tuple[Recorder, Runtime, list]:
    hv = KvmHypervisor(run_dir=tmp_path, log_dir=tmp_path)
    mon = Recorder()
    monkeypatch.setattr(hv, "_mon", lambda files: mon)
    pinned: list = []
    monkeypatch.setattr(cpus, "pin", lambda pid, threads, mask: pinned.append((pid, threads, mask)))
    rt = Runtime(name="inst1", inst={}, machine="pc", accel="tcg", binary="qemu", layout={}, pid=99)
    hv._after_launch(hv._files("inst1"), rt, resolved)
    return mon, rt, pinned


def test_after_launch_sets_the_password_pins_vcpus_and_reads_the_vnc_port(tmp_path, monkeypatch):
    mon, rt, pinned = launch(tmp_path, monkeypatch, Resolved(vnc_host="127.0.0.1", vnc_password="s3cret",
                                                             cpu_mask=[[1]]))
    assert mon.calls[0] == ("set_password", {"protocol": "vnc", "password": "s3cret"})
    assert pinned == [(99, {0: 4242}, [[1]])]
    assert rt.vnc == {"host": "127.0.0.1", "port": 5901} and rt.spice is None


def test_spice_password_and_port(tmp_path, monkeypatch):
    mon, rt, pinned = launch(tmp_path, monkeypatch, Resolved(spice=("127.0.0.1", 6003), spice_password="pa55"))
    assert ("set_password", {"protocol": "spice", "password": "pa55"}) in mon.calls
    assert rt.spice == {"host": "127.0.0.1", "port": 6003} and pinned == []


def test_nothing_to_tell_a_plain_guest(tmp_path, monkeypatch):
    mon, rt, pinned = launch(tmp_path, monkeypatch, Resolved())
    assert mon.calls == [] and pinned == [] and rt.vnc is None
