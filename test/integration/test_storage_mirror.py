"""The mirror template on real qemu-storage-daemons: two "nodes" on loopback addresses.

Each node is a state root with the cluster certificate; the test switches between
them through GENET_ROOT / GENET_HOSTNAME, as the node daemons would see them. The
guest is qemu-io writing through the primary's NBD socket.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

from genet import ssl_utils
from genet.storage import base as storage
from genet.storage.mirror import MirrorStorage

SIZE_MIB = 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nodes:
    def __init__(self, tmp_path, monkeypatch):
        self.tmp, self.mp = tmp_path, monkeypatch
        pem = tmp_path / "server.pem"
        ssl_utils.generate_cluster_cert(pem, "mirror-test")
        for node in ("nodea", "nodeb"):
            data = tmp_path / node / "var/lib/genet"
            data.mkdir(parents=True)
            (data / "server.pem").write_bytes(pem.read_bytes())
        self.disk = {"uuid": str(uuid.uuid4()), "size": SIZE_MIB, "mode": "rw", "format": "raw",
                     "logical_id": {"nodes": ["nodea", "nodeb"], "addresses": ["127.0.0.51", "127.0.0.52"],
                                    "port": free_port()}}
        self.template = MirrorStorage({"file_storage_dir": "srv/genet/file-storage"})

    def on(self, node: str) -> MirrorStorage:
        self.mp.setenv("GENET_ROOT", str(self.tmp / node))
        self.mp.setenv("GENET_HOSTNAME", node)
        return self.template

    def image(self, node: str):
        return self.tmp / node / "srv/genet/file-storage/inst1" / f"disk-{self.disk['uuid']}.raw"

    def wait_state(self, node: str, wanted: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.on(node).status("inst1", self.disk, 0)
            if status["state"] == wanted:
                return status
            assert time.monotonic() < deadline, f"{node}: {status}, wanted {wanted}"
            time.sleep(0.05)

    def down(self):
        for node in ("nodea", "nodeb"):
            self.on(node).shutdown("inst1", self.disk, 0)


@pytest.fixture
def nodes(tmp_path, monkeypatch):
    n = Nodes(tmp_path, monkeypatch)
    try:
        yield n
    finally:
        n.down()


def guest_write(access: dict, offset_mib: int, length_kib: int, pattern: int) -> None:
    """A write the guest sees completed: qemu-io through the primary's NBD socket returns after it."""
    url = f"nbd+unix:///{access['export']}?socket={access['nbd_socket']}"
    proc = subprocess.run(["qemu-io", "-f", "raw", "-c", f"write -P {pattern} {offset_mib}M {length_kib}k", url],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "wrote" in proc.stdout, proc.stdout + proc.stderr


def region(path, offset_mib: int, length_kib: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset_mib << 20)
        return hashlib.sha256(f.read(length_kib << 10)).hexdigest()


def expected(length_kib: int, pattern: int) -> str:
    return hashlib.sha256(bytes([pattern]) * (length_kib << 10)).hexdigest()


def start_pair(nodes: Nodes) -> dict:
    for node in ("nodea", "nodeb"):
        nodes.on(node).create("inst1", nodes.disk, 0)
    assert nodes.on("nodeb").assemble("inst1", nodes.disk, 0, "secondary") == {"role": "secondary"}
    access = nodes.on("nodea").assemble("inst1", nodes.disk, 0, "primary")
    nodes.wait_state("nodea", "in sync")
    return access


def test_every_completed_write_is_on_both_nodes(nodes):
    access = start_pair(nodes)
    writes = [(1, 512, 0x11), (7, 64, 0x22), (SIZE_MIB - 1, 1024, 0x33), (1, 4, 0x44)]
    for offset, length, pattern in writes:
        guest_write(access, offset, length, pattern)
    os.kill(nodes.on("nodea")._state(nodes.disk)["pid"], signal.SIGKILL)     # the primary dies at once
    for offset, length, pattern in writes[1:]:
        assert region(nodes.image("nodeb"), offset, length) == expected(length, pattern)
    assert region(nodes.image("nodeb"), 1, 4) == expected(4, 0x44)
    assert nodes.image("nodea").read_bytes() == nodes.image("nodeb").read_bytes()


def test_initial_sync_copies_what_was_there_before(nodes):
    for node in ("nodea", "nodeb"):
        nodes.on(node).create("inst1", nodes.disk, 0)
    with open(nodes.image("nodea"), "r+b") as f:        # e.g. the OS install, before mirroring
        f.seek(3 << 20)
        f.write(b"\x5a" * (256 << 10))
    start_pair(nodes)
    assert region(nodes.image("nodeb"), 3, 256) == expected(256, 0x5a)


def test_secondary_lost_then_back_is_resynced_with_only_what_changed(nodes):
    """The secondary's daemon dies; the guest goes on degraded. When a daemon serves its image
    again, the paused mirror resumes as soon as QEMU's NBD client has reconnected: only the
    region written meanwhile is copied, not the disk."""
    access = start_pair(nodes)
    what = "disk 0 of inst1"
    copied_before = nodes.on("nodea")._job(nodes.disk, what)["len"]
    os.kill(nodes.on("nodeb")._state(nodes.disk)["pid"], signal.SIGKILL)
    guest_write(access, 5, 256, 0x66)            # the guest goes on, degraded
    status = nodes.wait_state("nodea", "degraded")
    assert status["connected"] is False
    assert region(nodes.image("nodea"), 5, 256) == expected(256, 0x66)
    assert region(nodes.image("nodeb"), 5, 256) != expected(256, 0x66)
    nodes.on("nodeb").assemble("inst1", nodes.disk, 0, "secondary")
    assert nodes.on("nodea").resync("inst1", nodes.disk, 0) == "resumed"
    nodes.wait_state("nodea", "in sync")
    copied = nodes.on("nodea")._job(nodes.disk, what)["len"] - copied_before
    assert 0 < copied <= 2 << 20 < SIZE_MIB << 20          # the 256 KiB written, in 1 MiB chunks
    guest_write(access, 9, 128, 0x77)
    assert nodes.image("nodea").read_bytes() == nodes.image("nodeb").read_bytes()


def test_primary_without_its_secondary_starts_degraded_and_mirrors_once_it_comes(nodes):
    for node in ("nodea", "nodeb"):
        nodes.on(node).create("inst1", nodes.disk, 0)
    access = nodes.on("nodea").assemble("inst1", nodes.disk, 0, "primary")
    assert nodes.on("nodea").status("inst1", nodes.disk, 0)["state"] == "degraded"
    guest_write(access, 2, 64, 0x21)
    nodes.on("nodeb").assemble("inst1", nodes.disk, 0, "secondary")
    assert nodes.on("nodea").resync("inst1", nodes.disk, 0) == "started"
    nodes.wait_state("nodea", "in sync")
    access = nodes.on("nodea").access("inst1", nodes.disk, 0)
    guest_write(access, 4, 64, 0x42)
    assert nodes.image("nodea").read_bytes() == nodes.image("nodeb").read_bytes()


def test_refusals_name_the_disk_and_the_reason(nodes):
    with pytest.raises(storage.StorageError, match="is missing"):
        nodes.on("nodea").assemble("inst1", nodes.disk, 0, "primary")
    with pytest.raises(storage.StorageError, match="not mirrored on node nodec"):
        nodes.mp.setenv("GENET_HOSTNAME", "nodec")
        nodes.template.assemble("inst1", nodes.disk, 0, "secondary")
    with pytest.raises(storage.StorageError, match="unknown role"):
        nodes.on("nodea").assemble("inst1", nodes.disk, 0, "boss")
    with pytest.raises(storage.StorageError, match="raw images"):
        nodes.on("nodea").create("inst1", dict(nodes.disk, format="qcow2"), 0)
    assert storage.get("mirror").mirrored


def test_live_migration_swaps_the_roles_without_copying(nodes):
    """prepare on both nodes, switch the target (it mirrors back with nothing to copy), switch the
    source: every write before, between and after lands on both images."""
    source_access = start_pair(nodes)
    guest_write(source_access, 1, 256, 0x10)
    target_access = nodes.on("nodeb").migration_prepare("inst1", nodes.disk, 0, "target")
    assert nodes.on("nodea").migration_prepare("inst1", nodes.disk, 0, "source") == {"role": "secondary"}
    guest_write(source_access, 2, 256, 0x20)          # the guest still runs on the source
    assert nodes.on("nodeb").migration_switch("inst1", nodes.disk, 0, "target") == "in sync"
    job = nodes.on("nodeb")._job(nodes.disk, "test")
    assert job["ready"] and job["len"] == 0            # sync "none": nothing was copied
    guest_write(target_access, 3, 256, 0x30)          # the guest runs on the target now
    assert nodes.on("nodea").migration_switch("inst1", nodes.disk, 0, "source") == "secondary"
    guest_write(target_access, 4, 256, 0x40)
    for offset, pattern in ((1, 0x10), (2, 0x20), (3, 0x30), (4, 0x40)):
        assert region(nodes.image("nodea"), offset, 256) == expected(256, pattern)
    assert nodes.image("nodea").read_bytes() == nodes.image("nodeb").read_bytes()
    assert nodes.on("nodeb").status("inst1", nodes.disk, 0)["role"] == "primary"
    assert nodes.on("nodea").status("inst1", nodes.disk, 0)["role"] == "secondary"
    assert not nodes.on("nodeb")._next_dir(nodes.disk).exists()


def test_aborted_migration_leaves_the_roles_as_they_were(nodes):
    access = start_pair(nodes)
    nodes.on("nodeb").migration_prepare("inst1", nodes.disk, 0, "target")
    nodes.on("nodea").migration_prepare("inst1", nodes.disk, 0, "source")
    for node in ("nodeb", "nodea"):
        nodes.on(node).migration_abort("inst1", nodes.disk, 0)
        assert not nodes.on(node)._next_dir(nodes.disk).exists()
    guest_write(access, 6, 128, 0x66)
    assert nodes.on("nodea").status("inst1", nodes.disk, 0)["state"] == "in sync"
    assert region(nodes.image("nodeb"), 6, 128) == expected(128, 0x66)
    with pytest.raises(storage.StorageError, match="no prepared daemon"):
        nodes.on("nodeb").migration_switch("inst1", nodes.disk, 0, "target")
    with pytest.raises(storage.StorageError, match="not assembled as secondary"):
        nodes.on("nodea").migration_prepare("inst1", nodes.disk, 0, "target")


def test_grow_the_secondary_then_the_primary_mirrors_the_larger_disk(nodes):
    start_pair(nodes)
    nodes.on("nodeb").grow("inst1", nodes.disk, 0, SIZE_MIB + 16)
    nodes.on("nodea").grow("inst1", nodes.disk, 0, SIZE_MIB + 16)
    nodes.wait_state("nodea", "in sync")
    access = nodes.on("nodea").access("inst1", nodes.disk, 0)
    guest_write(access, SIZE_MIB + 8, 256, 0x48)       # beyond the old end: a new client sees the new size
    for node in ("nodea", "nodeb"):
        assert nodes.image(node).stat().st_size == (SIZE_MIB + 16) << 20
    assert region(nodes.image("nodeb"), SIZE_MIB + 8, 256) == expected(256, 0x48)
