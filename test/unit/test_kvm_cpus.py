"""CPU topology and pinning of the kvm backend (genet.hypervisor.kvm.cpus): Ganeti's cpu_mask
syntax, and the affinity of real threads after pinning."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import cpus


@pytest.mark.parametrize("mask, parsed", [
    ("all", [None]),
    ("0-2,5", [[0, 1, 2, 5]]),
    ("1:3", [[1], [3]]),
    ("1-2:all", [[1, 2], None]),
    ("all:1,3-5:0", [None, [1, 3, 4, 5], [0]]),
])
def test_ganeti_cpu_masks_parse(mask, parsed):
    assert cpus.parse_mask(mask) == parsed


def allowed(tid: int) -> str:
    status = Path(f"/proc/{tid}/status").read_text()
    return next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("Cpus_allowed_list"))


@pytest.fixture
def process():
    """A process with two threads (python's main thread and one it starts), killed afterwards."""
    proc = subprocess.Popen(["python3", "-c", "import threading,time; threading.Thread(target=time.sleep,"
                             " args=(60,)).start(); time.sleep(60)"])
    try:
        while len(os.listdir(f"/proc/{proc.pid}/task")) < 2:
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_one_entry_pins_every_thread_of_the_process(process):
    cpu = min(os.sched_getaffinity(0))
    cpus.pin(process, {}, [[cpu]])
    assert {allowed(int(t)) for t in os.listdir(f"/proc/{process}/task")} == {str(cpu)}


def test_per_vcpu_entries_pin_each_vcpu_thread_and_leave_all_alone(process):
    main, other = sorted(int(t) for t in os.listdir(f"/proc/{process}/task"))
    before = allowed(other)
    cpu = max(os.sched_getaffinity(0))
    cpus.pin(process, {0: main, 1: other}, [[cpu], None])
    assert (allowed(main), allowed(other)) == (str(cpu), before)


def test_vcpu_threads_come_from_query_cpus_fast():
    reply = [{"cpu-index": 0, "thread-id": 101, "props": {}}, {"cpu-index": 1, "thread-id": 102, "props": {}}]
    assert cpus.vcpu_threads(reply) == {0: 101, 1: 102}


def test_smp_option_names_only_the_topology_given():
    assert cpus.smp_option(4, {"cpu_sockets": 0, "cpu_cores": 2, "cpu_threads": 0}) == "4,cores=2"


def test_check_mask_refuses_a_per_vcpu_mask_of_the_wrong_length():
    with pytest.raises(HypervisorError, match="has 2 entries but the instance has 1 vCPUs"):
        cpus.check_mask("0:1", 1, {0, 1})
