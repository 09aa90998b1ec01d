#!/usr/bin/env python3
"""Benchmarks of the mirror disk template on a 3-node dev cluster (issue 6).

    /tmp/venvtest/bin/python bench/mirror.py [--size-mib 1024] [--out FILE]

1. initial sync: a mirror disk of --size-mib filled with random data on the primary, then
   activated: seconds until the primary reports it in sync, against `cp` of the same file
   on this machine (to another file, then sync); ratio = cp seconds / sync seconds.
2. guest writes: the test guest (QEMU, TCG) writes 32 MiB with dd conv=fsync to a file disk
   and to a mirror disk; ratio = mirror throughput / file throughput.
3. outage: the secondary's link is cut for 10 s while the guest writes 8 MiB, then healed and
   the disks activated again: whether the copy resumed (only what changed moves) and how many
   bytes the mirror job still had to copy, against the disk size.
4. live migration: an idle guest with a 256 MiB disk, migrated live as mirror (to its
   secondary: the copies swap roles) and as file (the disk is copied to the target while the
   memory moves): the guest's downtime as the job reports it (for mirror including the switch
   of roles) and the wall time of `gnt-instance migrate`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOL = HERE.parent / "tools" / "dev-cluster"
sys.path.insert(0, str(HERE.parent / "test" / "integration"))
sys.path.insert(0, str(HERE.parent / "tools"))         # genet_dev (the test guest)


def tool(*args: str, input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, input=input,
                          timeout=timeout)


class Cluster:
    def __init__(self, directory: Path):
        self.dir = directory

    def run(self, *cmd: str, node: str = "node1", input: str | None = None, check: bool = True) -> str:
        proc = tool("exec", "--dir", str(self.dir), node, "--", *cmd, input=input)
        if check and proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def image(self, node: str, name: str) -> Path:
        return next((self.dir / node / "root/srv/genet/file-storage" / name).glob("disk-*.raw"))

    def in_sync(self) -> bool:
        return tool("exec", "--dir", str(self.dir), "node1", "--", "gnt-cluster", "verify-disks").returncode == 0


def wait(predicate, timeout: float, what: str):
    from devnet import wait_for
    return wait_for(predicate, timeout, what, interval=0.1)


def hvparams(ip: str) -> str:
    from genet_dev import testguest
    guest = testguest.ensure()
    return (f"kernel_path={guest['kernel']},initrd_path={guest['initrd']},accel=tcg,serial_console=true,"
            f"kernel_args=console=ttyS0 quiet genet.ip={ip}/24")


def initial_sync(c: Cluster, size_mib: int) -> dict:
    c.run("gnt-instance", "add", "-t", "mirror", "-n", "node1:node2", "--disk", f"0:size={size_mib}M",
          "-H", hvparams("10.199.0.69"), "--no-start", "-o", "noop", "big")
    c.run("gnt-instance", "deactivate-disks", "big")
    image = c.image("node1", "big")
    with open(image, "r+b") as f:             # random data everywhere: nothing to skip
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
        os.fsync(f.fileno())
    start = time.monotonic()
    c.run("gnt-instance", "activate-disks", "big")
    wait(c.in_sync, 3600, "the initial sync")
    sync_s = time.monotonic() - start
    with tempfile.TemporaryDirectory(dir=image.parent) as tmp:
        start = time.monotonic()
        subprocess.run(["cp", str(image), str(Path(tmp) / "copy.raw")], check=True)
        subprocess.run(["sync"], check=True)
        cp_s = time.monotonic() - start
    same = subprocess.run(["cmp", str(image), str(c.image("node2", "big"))]).returncode == 0
    c.run("gnt-instance", "remove", "big")
    return {"size_mib": size_mib, "sync_s": round(sync_s, 2), "cp_s": round(cp_s, 2),
            "sync_mib_s": round(size_mib / sync_s, 1), "cp_mib_s": round(size_mib / cp_s, 1),
            "ratio": round(cp_s / sync_s, 2), "images_identical": same}


def guest_console(c: Cluster, name: str, commands: str) -> str:
    return c.run("gnt-instance", "console", name, input=commands)


def guest_throughput(c: Cluster, template: str, nodes: str, name: str, ip: str) -> float:
    from genet_dev import testguest
    c.run("gnt-instance", "add", "-t", template, "-n", nodes, "--disk", "0:size=64M",
          "-B", "memory=256M", "-H", hvparams(ip), name)
    log = c.dir / nodes.split(":")[0] / "root/var/run/genet/kvm" / name / "serial.log"
    wait(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 120, "boot")
    # busybox's date has no sub-second format: /proc/uptime in centiseconds
    now = "$(sed 's/ .*//;s/[.]//' /proc/uptime)"
    guest_console(c, name, f"(S={now}; dd if=/dev/zero of=/dev/vda bs=1M count=32 conv=fsync 2>/dev/null;"
                           f" E={now}; echo $((E - S)) > /tmp/cs) &\n")

    def done():
        found = re.search(r"CS-(\d+)", guest_console(c, name, "echo CS-$(cat /tmp/cs 2>/dev/null)\n"))
        return int(found.group(1)) if found else None
    centis = wait(done, 300, "the guest's dd")
    c.run("gnt-instance", "remove", name)
    return 32 / max(centis / 100, 0.01)


def mirror_copied_mib(c: Cluster, name: str) -> float:
    """What the primary's mirror job has copied so far (its len grows by every region it copies)."""
    from genet.hypervisor.kvm.monitor import Monitor
    uuid = c.run("gnt-instance", "list", "--no-headers", "-o", "disk.uuids", name).strip()
    sock = c.dir / "node1/root/var/run/genet/mirror" / uuid / "qmp.sock"
    jobs = Monitor(sock, f"mirror of {name}").execute_many([("query-block-jobs", None)])[0]
    return round(jobs[0]["len"] / (1 << 20), 1) if jobs else 0.0


def outage(c: Cluster) -> dict:
    """A 10 s cut of the secondary while the guest writes; what the mirror copies afterwards."""
    from genet_dev import testguest
    c.run("gnt-instance", "add", "-t", "mirror", "-n", "node1:node3", "--disk", "0:size=256M",
          "-B", "memory=256M", "-H", hvparams("10.199.0.72"), "cut")
    log = c.dir / "node1/root/var/run/genet/kvm/cut/serial.log"
    wait(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 120, "boot")
    wait(c.in_sync, 600, "the initial sync")
    copied_before = mirror_copied_mib(c, "cut")
    tool("partition", "--dir", str(c.dir), "node3")
    started = time.monotonic()
    guest_console(c, "cut", "(dd if=/dev/urandom of=/dev/vda bs=1M count=8 seek=16 conv=fsync 2>/dev/null;"
                            " echo done > /tmp/cut) &\n")
    wait(lambda: "CUT-done" in guest_console(c, "cut", "echo CUT-$(cat /tmp/cut 2>/dev/null)\n"), 120, "the write")
    time.sleep(max(0.0, 10 - (time.monotonic() - started)))
    tool("heal", "--dir", str(c.dir), "node3")
    out = c.run("gnt-instance", "activate-disks", "cut")
    how = re.search(r"disk 0: (\w+)", out)
    wait(c.in_sync, 600, "the resync")
    copied = mirror_copied_mib(c, "cut")
    same = subprocess.run(["cmp", str(c.image("node1", "cut")), str(c.image("node3", "cut"))]).returncode == 0
    c.run("gnt-instance", "remove", "cut")
    how = how.group(1) if how else out.strip()
    return {"outage_s": 10, "written_mib": 8, "disk_mib": 256, "resync": how,
            # a resumed job grew by what it copied after the outage; a new one copied the whole disk
            "copied_mib": round(copied - copied_before, 1) if how == "resumed" else copied,
            "images_identical_after": same}


def migration(c: Cluster) -> dict:
    from genet_dev import testguest
    out = {}
    for template, nodes, target in (("mirror", "node2:node3", []), ("file", "node2", ["-n", "node3"])):
        name = f"mig{template}"
        c.run("gnt-instance", "add", "-t", template, "-n", nodes, "--disk", "0:size=256M",
              "-B", "memory=256M", "-H", hvparams("10.199.0.73"), name)
        log = c.dir / "node2/root/var/run/genet/kvm" / name / "serial.log"
        wait(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 120, "boot")
        started = time.monotonic()
        job = c.run("gnt-instance", "migrate", *target, name)
        wall = time.monotonic() - started
        downtime = re.search(r"downtime (\d+) ms", job)
        out[template] = {"downtime_ms": int(downtime.group(1)) if downtime else None, "wall_s": round(wall, 2)}
        c.run("gnt-instance", "remove", name)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--out")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--skip", action="append", default=[], choices=["sync", "write", "outage", "migration"],
                        help="leave a figure out (repeatable)")
    opts = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="genet-bench-mirror-")) / "cluster"
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}
    try:
        proc = tool("start", "--nodes", "3", "--hypervisor", "kvm", "--dir", str(directory))
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
        c = Cluster(directory)
        if "sync" not in opts.skip:
            results["initial_sync"] = initial_sync(c, opts.size_mib)
            print("initial sync:", results["initial_sync"], flush=True)
        if "write" not in opts.skip:
            file_mib_s = guest_throughput(c, "file", "node1", "wfile", "10.199.0.70")
            mirror_mib_s = guest_throughput(c, "mirror", "node1:node2", "wmirror", "10.199.0.71")
            results["guest_write"] = {"file_mib_s": round(file_mib_s, 1), "mirror_mib_s": round(mirror_mib_s, 1),
                                      "ratio": round(mirror_mib_s / file_mib_s, 2)}
            print("guest writes:", results["guest_write"], flush=True)
        if "outage" not in opts.skip:
            results["outage"] = outage(c)
            print("outage:", results["outage"], flush=True)
        if "migration" not in opts.skip:
            results["migration"] = migration(c)
            print("live migration:", results["migration"], flush=True)
    finally:
        if not opts.keep:
            tool("stop", "--dir", str(directory))
            shutil.rmtree(directory.parent, ignore_errors=True)
    if opts.out:
        Path(opts.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
