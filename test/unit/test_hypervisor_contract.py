"""One contract for every hypervisor backend: the fake, and kvm with a real QEMU.

The kvm guest here has no disk and no kernel: the BIOS spins under TCG in 64 MiB,
which is enough to start, stop, reboot and migrate a real QEMU in well under a
second. Behaviour that needs a guest OS (ACPI power-off, hotplug seen by the
guest) is in test/integration/test_kvm.py.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from genet.hypervisor import base
from genet.hypervisor.base import HvState, HypervisorError
from genet.hypervisor.fake import FakeFabric, FakeHypervisor

QEMU = "/usr/bin/qemu-system-x86_64"


def make_inst(name: str = "inst1", **hvparams) -> dict:
    return {"name": name, "uuid": "0b6f4c36-6a8e-4f0c-9d0e-3d6b8f1e2a10", "hypervisor": "",
            "hvparams": {"accel": "tcg", **hvparams},
            "beparams": {"maxmem": 64, "minmem": 64, "vcpus": 1}, "nics": [], "disks": []}


class Backend:
    """Builds hypervisors of one kind for a test, and does what only a test may do to them."""

    def __init__(self, kind: str, tmp_path: Path):
        self.kind = kind
        self.tmp = tmp_path
        self.fabric = FakeFabric()
        self.made: list[base.Hypervisor] = []

    def new(self, node: str = "node1") -> base.Hypervisor:
        if self.kind == "fake":
            hv: base.Hypervisor = FakeHypervisor(state_dir=self.tmp / node / "fake", fabric=self.fabric,
                                                 clock=time.monotonic)
        else:
            from genet.hypervisor.kvm import KvmHypervisor
            root = self.tmp / node
            hv = KvmHypervisor(run_dir=root / "var/run/genet/kvm", log_dir=root / "var/log/genet/kvm",
                               reboot_timeout=0.5)
        self.made.append(hv)
        return hv

    def kill_process(self, hv: base.Hypervisor, name: str) -> None:
        """The instance's process dies without being asked to."""
        if self.kind == "fake":
            hv.crash(name)                                   # type: ignore[attr-defined]
            return
        pid = hv.info(name)["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while hv.info(name)["state"] != HvState.CRASHED.value and time.monotonic() < deadline:
            time.sleep(0.02)

    def cleanup(self) -> None:
        for hv in self.made:
            for name in hv.list_instances():
                hv.stop(name, force=True)


@pytest.fixture(params=["fake", "kvm"])
def backend(request, tmp_path, monkeypatch):
    monkeypatch.setenv("GENET_ROOT", str(tmp_path / "node1"))
    b = Backend(request.param, tmp_path)
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def hv(backend):
    return backend.new()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_migration(hv: base.Hypervisor, name: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = hv.migration_status(name)
        if status["status"] != "active" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


# --- start, info, stop

def test_started_instance_is_reported_running_with_its_resources(hv):
    """When an instance starts, info shows it running with its memory, vCPUs and a pid."""
    hv.start(make_inst())
    info = hv.info("inst1")
    assert info["state"] == HvState.RUNNING.value
    assert (info["memory"], info["vcpus"]) == (64, 1)
    assert info["pid"] > 0 and info["uptime"] >= 0
    assert hv.list_instances() == ["inst1"]
    assert hv.all_info().keys() == {"inst1"}


def test_forced_stop_forgets_the_instance(hv):
    """When an instance is stopped with force, info says None and it is no longer listed."""
    hv.start(make_inst())
    hv.stop("inst1", force=True)
    assert hv.info("inst1") is None
    assert hv.list_instances() == []


def test_second_start_is_refused_as_already_running(hv):
    """When an instance runs, starting it again fails and the first one keeps running."""
    hv.start(make_inst())
    pid = hv.info("inst1")["pid"]
    with pytest.raises(HypervisorError, match="already running"):
        hv.start(make_inst())
    assert hv.info("inst1")["pid"] == pid


def test_unknown_hvparams_are_refused_by_name(hv):
    """When hvparams hold unknown names, check_parameters and start name them all; nothing starts."""
    with pytest.raises(HypervisorError, match="unknown hvparams: bogus_one, bogus_two"):
        hv.check_parameters({"bogus_two": 1, "bogus_one": "x", "accel": "tcg"})
    with pytest.raises(HypervisorError, match="inst1.*bogus_one"):
        hv.start(make_inst(bogus_one=1))
    assert hv.list_instances() == []


def test_malformed_hvparam_value_is_refused(hv):
    """When a known hvparam has a bad value, the message names the parameter."""
    with pytest.raises(HypervisorError, match="'accel'.*auto, kvm, tcg"):
        hv.check_parameters({"accel": "warp"})
    with pytest.raises(HypervisorError, match="migration_downtime"):
        hv.check_parameters({"migration_downtime": "soon"})
    hv.check_parameters({"serial_console": "false", "migration_bandwidth": "64"})   # CLI strings are fine


def test_stopping_an_instance_that_does_not_run_is_not_an_error(hv):
    """When stop names an unknown instance, it returns quietly."""
    hv.stop("ghost", timeout=1)
    hv.stop("ghost", force=True)


def test_unknown_instance_has_no_info_and_no_console(hv):
    """When an instance is unknown, info is None and console/reboot/migrate fail with its name."""
    assert hv.info("ghost") is None
    for call in (lambda: hv.console("ghost"), lambda: hv.reboot("ghost"),
                 lambda: hv.migrate("ghost", "127.0.0.1", 1), lambda: hv.hotplug_disk("ghost", {}, 0)):
        with pytest.raises(HypervisorError, match="ghost"):
            call()


def test_console_of_a_running_instance_is_its_serial_port(hv):
    hv.start(make_inst())
    console = hv.console("inst1")
    assert console["kind"] == "serial" and "inst1" in console["path"]


def test_node_info_counts_the_memory_of_running_guests(hv):
    """When a 64 MiB guest starts, memory_hv grows by 64 MiB."""
    before = hv.node_info()
    assert set(before) >= {"memory_total", "memory_free", "memory_hv", "cpu_total"}
    hv.start(make_inst())
    after = hv.node_info()
    assert after["memory_hv"] == before["memory_hv"] + 64
    assert after["memory_total"] == before["memory_total"] and after["cpu_total"] >= 1


def test_stop_ends_a_guest_that_ignores_acpi_after_the_timeout(hv):
    """When the guest does not react to the power button, stop kills it after the timeout."""
    hv.start(make_inst())
    started = time.monotonic()
    hv.stop("inst1", timeout=0.5)
    assert time.monotonic() - started < 5
    assert hv.info("inst1") is None


def test_paused_start_reports_running_in_runstate_paused(hv):
    hv.start(make_inst(), paused=True)
    info = hv.info("inst1")
    assert (info["state"], info["runstate"]) == (HvState.RUNNING.value, "paused")


def test_pause_freezes_a_running_guest_in_its_process(hv):
    """When paused, the guest stops at once (runstate paused) but its process stays, until a
    stop; pausing what does not run is an error naming it."""
    hv.start(make_inst())
    pid = hv.info("inst1")["pid"]
    hv.pause("inst1")
    info = hv.info("inst1")
    assert (info["state"], info["runstate"], info["pid"]) == (HvState.RUNNING.value, "paused", pid)
    hv.stop("inst1", 0, force=True)
    assert hv.info("inst1") is None
    with pytest.raises(HypervisorError, match="instance inst1 is not running"):
        hv.pause("inst1")


def test_hard_reboot_keeps_the_process_and_soft_reboot_replaces_it(hv):
    """When rebooted hard the pid stays; a soft reboot (stop + start) gives a new process."""
    hv.start(make_inst())
    pid = hv.info("inst1")["pid"]
    hv.reboot("inst1", hard=True)
    assert hv.info("inst1")["pid"] == pid
    hv.reboot("inst1", hard=False)
    info = hv.info("inst1")
    assert info["state"] == HvState.RUNNING.value and info["pid"] != pid


def test_a_process_that_dies_is_reported_crashed_until_stopped(backend, hv):
    """When the process dies on its own, info says CRASHED; stop cleans up; start works again."""
    hv.start(make_inst())
    backend.kill_process(hv, "inst1")
    assert hv.info("inst1")["state"] == HvState.CRASHED.value
    assert hv.node_info()["memory_hv"] == 0
    hv.start(make_inst())                       # a crashed record does not block a new start
    assert hv.info("inst1")["state"] == HvState.RUNNING.value
    backend.kill_process(hv, "inst1")
    hv.stop("inst1")
    assert hv.info("inst1") is None and hv.list_instances() == []


# --- migration

def test_live_migration_moves_the_guest_to_the_target(backend):
    """When the target accepts and the source migrates, the target runs the guest and the
    source waits in postmigrate until it is stopped."""
    source, target = backend.new("node1"), backend.new("node2")
    source.start(make_inst())
    port = free_port()
    target.accept_incoming(make_inst(), "127.0.0.1", port, info=source.migration_info("inst1"))
    assert target.info("inst1")["runstate"] == "inmigrate"
    source.migrate("inst1", "127.0.0.1", port, live=True, bandwidth=1000, downtime_ms=100)
    status = wait_migration(source, "inst1")
    assert status["status"] == "completed", status
    assert status["ram_total"] > 0 and status["ram_remaining"] == 0 and status["downtime_ms"] >= 0
    target.finish_incoming("inst1", True)
    assert target.info("inst1")["state"] == HvState.RUNNING.value
    assert target.info("inst1")["runstate"] == "running"
    assert source.info("inst1")["runstate"] == "postmigrate"
    source.stop("inst1", force=True)
    assert source.info("inst1") is None and target.list_instances() == ["inst1"]


def test_migration_to_an_address_nobody_listens_on_fails(backend):
    """When no target accepts, the status becomes failed with a reason and the source keeps running."""
    source = backend.new("node1")
    source.start(make_inst())
    source.migrate("inst1", "127.0.0.1", free_port())
    status = wait_migration(source, "inst1")
    assert status["status"] == "failed" and status["error"]
    assert source.info("inst1")["runstate"] == "running"


def test_failed_incoming_is_killed_by_finish_incoming(backend):
    """When the master gives up, finish_incoming(False) removes the waiting target."""
    target = backend.new("node2")
    target.accept_incoming(make_inst(), "127.0.0.1", free_port())
    target.finish_incoming("inst1", False)
    assert target.info("inst1") is None


def test_migration_status_without_migration_is_none(hv):
    hv.start(make_inst())
    assert hv.migration_status("inst1")["status"] == "none"


# --- fake only: what a test can make a fake guest do

def test_fake_guest_poweroff_is_reported_shutdown(tmp_path):
    hv = FakeHypervisor()
    hv.start(make_inst())
    hv.guest_poweroff("inst1")
    assert hv.info("inst1")["state"] == HvState.SHUTDOWN.value
    hv.stop("inst1")
    assert hv.info("inst1") is None


def test_fake_state_is_shared_by_two_objects_on_one_state_dir(tmp_path):
    """When two processes of one node use the same state_dir, they see the same instances."""
    a, b = FakeHypervisor(state_dir=tmp_path), FakeHypervisor(state_dir=tmp_path)
    a.start(make_inst())
    assert b.info("inst1")["pid"] == a.info("inst1")["pid"]
    with pytest.raises(HypervisorError, match="already running"):
        b.start(make_inst())


def test_fake_migration_advances_one_step_per_status_call():
    """Deterministic: active, active, completed; abort before completion cancels."""
    fabric = FakeFabric()
    src, dst = FakeHypervisor(fabric=fabric, clock=lambda: 0.0), FakeHypervisor(fabric=fabric, clock=lambda: 0.0)
    src.start(make_inst())
    dst.accept_incoming(make_inst(), "10.0.0.2", 8102)
    with pytest.raises(HypervisorError, match="not completed"):
        dst.finish_incoming("inst1", True)
    src.migrate("inst1", "10.0.0.2", 8102)
    assert [src.migration_status("inst1")["status"] for _ in range(3)] == ["active", "active", "completed"]
    with pytest.raises(HypervisorError, match="already completed"):
        src.abort_migration("inst1")
    dst.finish_incoming("inst1", True)
    dst.finish_incoming("inst1", True)                     # repeating is harmless


def test_fake_abort_keeps_the_source_running():
    fabric = FakeFabric()
    src, dst = FakeHypervisor(fabric=fabric), FakeHypervisor(fabric=fabric)
    src.start(make_inst())
    dst.accept_incoming(make_inst(), "10.0.0.2", 8102)
    src.migrate("inst1", "10.0.0.2", 8102, live=False)
    assert src.info("inst1")["runstate"] == "paused"
    src.abort_migration("inst1")
    assert src.migration_status("inst1")["status"] == "cancelled"
    assert src.info("inst1")["runstate"] == "running"


def test_fake_hotplug_keeps_the_master_order_and_refuses_bad_indexes():
    hv = FakeHypervisor()
    hv.start(make_inst())
    hv.hotplug_disk("inst1", {"path": "/a"}, 0)
    hv.hotplug_disk("inst1", {"path": "/b"}, 1)
    hv.unplug_disk("inst1", 0)
    assert hv.devices("inst1")["disks"] == [{"path": "/b"}]
    with pytest.raises(HypervisorError, match="index 5 out of range"):
        hv.hotplug_nic("inst1", {"mac": "aa:00:00:00:00:01"}, 5)


def image_size(path: Path) -> int:
    """The virtual size in bytes (-U: QEMU may hold the image)."""
    info = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True,
                          text=True, check=True)
    return json.loads(info.stdout)["virtual-size"]


def test_resize_disk_grows_the_images_a_running_guest_holds(hv, tmp_path):
    """When a running guest's disk is resized, its raw and qcow2 image files have the new size
    (kvm: QEMU's block_resize, as qemu-img cannot lock them); bad index and unknown instance
    are errors naming them."""
    raw, qcow2 = tmp_path / "d0.raw", tmp_path / "d1.qcow2"
    for path, fmt in ((raw, "raw"), (qcow2, "qcow2")):
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), "1M"], check=True)
    inst = make_inst()
    inst["disks"] = [{"path": str(raw), "format": "raw", "mode": "rw", "size": 1, "uuid": "d0"},
                     {"path": str(qcow2), "format": "qcow2", "mode": "rw", "size": 1, "uuid": "d1"}]
    hv.start(inst)
    hv.resize_disk("inst1", 0, 3)
    hv.resize_disk("inst1", 1, 5)
    assert raw.stat().st_size == 3 << 20 and image_size(qcow2) == 5 << 20
    with pytest.raises(HypervisorError, match="index 2 out of range"):
        hv.resize_disk("inst1", 2, 8)
    with pytest.raises(HypervisorError, match="ghost"):
        hv.resize_disk("ghost", 0, 8)


def test_fake_fail_next_makes_one_call_fail():
    hv = FakeHypervisor()
    hv.fail_next("start", "no memory")
    with pytest.raises(HypervisorError, match="no memory"):
        hv.start(make_inst())
    hv.start(make_inst())


def test_fake_node_info_totals_are_configurable():
    hv = FakeHypervisor(memory_total=1000, cpu_total=4)
    hv.start(make_inst())
    assert hv.node_info() == {"memory_total": 1000, "memory_free": 936, "memory_hv": 64, "cpu_total": 4,
                              "hv_version": [1, 0, 0]}


def test_fake_balloon_changes_the_memory_info_reports_up_to_what_it_started_with():
    hv = FakeHypervisor(memory_total=1000)
    hv.start(make_inst())
    hv.balloon_memory("inst1", 32)
    assert hv.info("inst1")["memory"] == 32 and hv.node_info()["memory_free"] == 968
    with pytest.raises(HypervisorError, match="cannot balloon above the 64 MiB it started with"):
        hv.balloon_memory("inst1", 65)


# --- kvm only

@pytest.fixture
def kvm(tmp_path, monkeypatch):
    from genet.hypervisor.kvm import KvmHypervisor
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    hv = KvmHypervisor()
    yield hv
    for name in hv.list_instances():
        hv.stop(name, force=True)


def test_kvm_qemu_that_dies_at_start_raises_its_message_and_leaves_nothing(kvm, tmp_path):
    """When QEMU refuses its argv, start raises with QEMU's own words and no files remain."""
    with pytest.raises(HypervisorError, match="QEMU failed to start:.*-bogus-option: invalid option"):
        kvm.start(make_inst(kvm_extra="-bogus-option"))
    assert kvm.list_instances() == []
    assert not (tmp_path / "var/run/genet/kvm/inst1").exists()
    assert "invalid option" in (tmp_path / "var/log/genet/kvm/inst1.log").read_text()


def test_kvm_missing_disk_fails_start_with_the_path(kvm, tmp_path):
    inst = make_inst()
    inst["disks"] = [{"path": str(tmp_path / "nope.img"), "format": "raw", "mode": "rw", "size": 1, "uuid": "u"}]
    with pytest.raises(HypervisorError, match="nope.img"):
        kvm.start(inst)
    assert kvm.list_instances() == []


def test_kvm_runtime_pins_the_concrete_machine_type(kvm, tmp_path):
    """When machine_version is empty, the binary's default is resolved to a versioned name and
    recorded; migration_info hands it to the target."""
    kvm.start(make_inst())
    machine = kvm.info("inst1")["machine"]
    assert machine.startswith("pc-") and machine[-1].isdigit()
    assert kvm.migration_info("inst1")["machine"] == machine
    runtime = (tmp_path / "var/run/genet/kvm/inst1/runtime.json").read_text()
    assert f'"machine": "{machine}"' in runtime


def test_kvm_argv_names_disks_and_nics_and_pins_their_slots(tmp_path):
    """The argv gives every disk and NIC an id and a fixed PCI slot (so hotplug and migration agree)."""
    from genet.hypervisor.kvm import KvmHypervisor, cmdline, devices
    from genet.hypervisor.kvm.runtime import Files
    inst = make_inst(kernel_path="/boot/vmlinuz", initrd_path="/boot/initrd", kernel_args="quiet", root_path="")
    inst["disks"] = [{"path": str(tmp_path / "d0"), "format": "qcow2", "mode": "rw", "uuid": "1234-5678"},
                     {"path": str(tmp_path / "d1"), "format": "raw", "mode": "ro", "uuid": "abcd"}]
    inst["nics"] = [{"mac": "aa:00:00:12:34:56", "mode": "bridged", "link": "br0"}]
    params = KvmHypervisor.fill_parameters(inst["hvparams"])
    layout = devices.plan(inst, params["disk_type"])
    layout["nics"][0]["tap"] = "gnt-t0007"
    argv = cmdline.build(inst, params, "pc-i440fx-7.2", "tcg", layout, Files("inst1", tmp_path, tmp_path))
    line = " ".join(argv)
    assert "-device virtio-blk-pci,id=diskdev0,drive=disk0,addr=0xb,serial=12345678,bootindex=1" in line
    assert "-device virtio-blk-pci,id=diskdev1,drive=disk1,addr=0xc,serial=abcd" in line
    assert '"driver":"qcow2","file":"disk0-file","node-name":"disk0","read-only":false' in line
    assert '"read-only":true' in line
    assert "-netdev tap,id=nic0,ifname=gnt-t0007,script=no,downscript=no" in line
    assert "-device virtio-net-pci,id=nicdev0,netdev=nic0,mac=aa:00:00:12:34:56,addr=0x3" in line
    assert argv[argv.index("-append") + 1] == "quiet console=ttyS0,38400"
    assert "-no-shutdown" not in argv and "-S" not in argv and "-incoming" not in argv


def test_kvm_layout_of_a_migration_target_follows_the_source(tmp_path):
    """When the source unplugged its first disk, the target puts the remaining one where the
    source has it, not at the first slot."""
    from genet.hypervisor.kvm import devices
    inst = make_inst()
    inst["disks"] = [{"path": "/a", "uuid": "A"}, {"path": "/b", "uuid": "B"}]
    source = devices.plan(inst, "paravirtual")
    del source["disks"][0]
    inst["disks"] = [{"path": "/b", "uuid": "B"}, {"path": "/c", "uuid": "C"}]
    target = devices.plan(inst, "paravirtual", previous=source)
    assert [(e["n"], e["slot"]) for e in target["disks"]] == [(1, 0x0c), (0, 0x0b)]


def test_kvm_accel_auto_prefers_tcg_under_nested_kvm_pvm(monkeypatch, caplog):
    """When KVM works only through kvm_pvm, accel=auto takes TCG and says why; accel=kvm is honoured."""
    from genet.hypervisor.kvm import capabilities
    caps = capabilities.Capabilities(binary=QEMU, version="7.2.0", machines={"pc": "pc-i440fx-7.2"},
                                     default_machine="pc-i440fx-7.2", kvm_works=True)
    monkeypatch.setattr(capabilities, "slow_nested_kvm", lambda: "kvm_pvm")
    assert capabilities.choose_accel("auto", caps, "inst1") == "tcg"
    assert "kvm_pvm" in caplog.text
    assert capabilities.choose_accel("kvm", caps, "inst1") == "kvm"
    monkeypatch.setattr(capabilities, "slow_nested_kvm", lambda: None)
    assert capabilities.choose_accel("auto", caps, "inst1") == "kvm"
    no_kvm = capabilities.Capabilities(binary=QEMU, version="7.2.0", machines={}, default_machine="",
                                       kvm_works=False)
    assert capabilities.choose_accel("auto", no_kvm, "inst1") == "tcg"
    with pytest.raises(HypervisorError, match="accel=kvm but KVM is not usable"):
        capabilities.choose_accel("kvm", no_kvm, "inst1")


def test_kvm_probe_resolves_machine_aliases_once_per_binary(kvm):
    from genet.hypervisor.kvm import capabilities
    caps = capabilities.probe(QEMU)
    assert capabilities.probe(QEMU) is caps
    assert caps.resolve_machine("pc") == caps.default_machine
    assert "query-migrate" in caps.commands
    with pytest.raises(HypervisorError, match="no machine type 'pc-nonsense'"):
        caps.resolve_machine("pc-nonsense")


def test_kvm_sockets_work_under_a_root_longer_than_the_unix_path_limit(tmp_path, monkeypatch):
    """When GENET_ROOT is deep, QMP and the serial socket still work (QEMU binds them relative)."""
    from genet.hypervisor.kvm import KvmHypervisor
    from genet.qmp import unix_connect
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv("GENET_ROOT", str(deep))
    hv = KvmHypervisor()
    hv.start(make_inst())
    try:
        assert len(hv.console("inst1")["path"]) > 108
        assert hv.info("inst1")["runstate"] == "running"
        unix_connect(Path(hv.console("inst1")["path"])).close()
    finally:
        hv.stop("inst1", force=True)


@pytest.mark.parametrize("disk_type", ["ide", "scsi-hd"])
def test_kvm_starts_ide_and_scsi_disks(kvm, tmp_path, disk_type):
    """When disk_type is ide or scsi-hd, QEMU starts with the disk on that bus."""
    disk = tmp_path / "d0.raw"
    disk.write_bytes(b"\0" * (1 << 20))
    inst = make_inst(disk_type=disk_type)
    inst["disks"] = [{"path": str(disk), "format": "raw", "mode": "rw", "size": 1, "uuid": "d0"}]
    kvm.start(inst)
    assert kvm.info("inst1")["runstate"] == "running"


def test_kvm_hotplugs_scsi_disks_and_refuses_ide(kvm, tmp_path):
    """When disk_type=scsi-hd, a disk can be added and removed while running (the SCSI bus
    needs no guest help to unplug); IDE disks cannot be hotplugged at all."""
    from genet.hypervisor.kvm import hotplug
    from genet.hypervisor.kvm.monitor import Monitor
    disk = tmp_path / "d1.raw"
    disk.write_bytes(b"\0" * (1 << 20))
    kvm.start(make_inst(disk_type="scsi-hd"))
    kvm.hotplug_disk("inst1", {"path": str(disk), "format": "raw", "mode": "rw", "size": 1, "uuid": "d1"}, 0)
    mon = Monitor(tmp_path / "var/run/genet/kvm/inst1/qmp.sock", "inst1")
    assert hotplug.present(mon, "diskdev0")
    with pytest.raises(HypervisorError, match="index 3 out of range"):
        kvm.hotplug_disk("inst1", {"path": str(disk), "format": "raw", "uuid": "d2"}, 3)
    kvm.unplug_disk("inst1", 0)
    assert not hotplug.present(mon, "diskdev0")
    assert "disk0" not in {b["node-name"] for b in mon.execute("query-named-block-nodes")}
    kvm.stop("inst1", force=True)
    kvm.start(make_inst(disk_type="ide"))
    with pytest.raises(HypervisorError, match="IDE disks cannot be hotplugged"):
        kvm.hotplug_disk("inst1", {"path": str(disk), "format": "raw", "uuid": "d1"}, 0)
