"""security_model=pool with real QEMUs (TCG, no guest OS: the BIOS spins): each guest runs as a
uid of the cluster's user-id pool (the node's ssconf uid_pool) that no other holds, and gives it
back when it stops, as Ganeti's uidpool. Needs root (QEMU's -runas)."""
from __future__ import annotations

import pytest

from genet import config, paths, uidpool
from genet.hypervisor.base import HypervisorError

POOL = "54321-54322"         # uids no process of this machine runs as


def inst(name: str) -> dict:
    return {"name": name, "uuid": "0b6f4c36-6a8e-4f0c-9d0e-3d6b8f1e2a1" + name[-1], "hypervisor": "kvm",
            "hvparams": {"accel": "tcg", "security_model": "pool"},
            "beparams": {"maxmem": 64, "minmem": 64, "vcpus": 1}, "nics": [], "disks": []}


def process_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))


@pytest.fixture
def kvm(tmp_path, monkeypatch):
    from genet.hypervisor.kvm import KvmHypervisor
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    paths.ssconf_file("uid_pool").parent.mkdir(parents=True, exist_ok=True)
    config.write_atomic(paths.ssconf_file("uid_pool"), f"{POOL}\n".encode())
    hv = KvmHypervisor(run_dir=tmp_path / "var/run/genet/kvm", log_dir=tmp_path / "var/log/genet/kvm")
    yield hv
    for name in hv.list_instances():
        hv.stop(name, force=True)


def test_each_guest_runs_as_a_uid_of_the_pool_of_its_own_until_it_stops(kvm):
    """When two guests start, QEMU runs as 54321 for one and 54322 for the other (the lock files
    mark them taken); a third finds no uid left and leaves nothing; once a guest stops its uid is
    free again and the third starts with it."""
    kvm.start(inst("vm1"))
    kvm.start(inst("vm2"))
    uids = {name: process_uid(kvm.info(name)["pid"]) for name in ("vm1", "vm2")}
    assert sorted(uids.values()) == [54321, 54322]
    assert sorted(p.name for p in uidpool.lock_dir().iterdir()) == ["54321", "54322"]
    with pytest.raises(HypervisorError, match="no unused user-id left in the pool 54321-54322"):
        kvm.start(inst("vm3"))
    assert sorted(kvm.list_instances()) == ["vm1", "vm2"]
    kvm.stop("vm1", force=True)
    assert sorted(p.name for p in uidpool.lock_dir().iterdir()) == [str(uids["vm2"])]
    kvm.start(inst("vm3"))
    assert process_uid(kvm.info("vm3")["pid"]) == uids["vm1"]


def test_pool_guest_is_refused_before_anything_starts_while_the_pool_is_empty(kvm):
    config.write_atomic(paths.ssconf_file("uid_pool"), b"\n")
    with pytest.raises(HypervisorError, match="'security_model'='pool'.*user-id pool is empty"):
        kvm.start(inst("vm1"))
    assert kvm.list_instances() == []
