"""What a QEMU binary can do, asked once per binary, and which accelerator to use.

The probe runs ``BINARY -machine none -qmp stdio`` and asks query-version,
query-kvm, query-machines, query-commands, query-migrate-capabilities and
query-qmp-schema (for the block drivers and aio modes it was built with), and reads
``BINARY -help`` for its options (-spice, -runas); the answer is cached in memory by
(path, mtime), so an upgraded binary is probed again. The machine type is
resolved here to a concrete versioned name (``pc`` → ``pc-i440fx-7.2``): that
name is pinned in the runtime file and reused on a migration target.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from genet.hypervisor.base import HypervisorError

log = logging.getLogger("genet.hypervisor.kvm")

# Nested KVM through this module runs guests with QEMU's default CPU model so
# slowly that they are useless, and `-cpu host` fails at start (notes/machine.md).
SLOW_NESTED_MODULES = ("kvm_pvm",)


@dataclass(frozen=True)
class Capabilities:
    binary: str
    version: str                                  # "7.2.22"
    machines: dict[str, str]                      # name → concrete name (aliases resolved)
    default_machine: str                          # concrete name
    commands: frozenset[str] = field(default_factory=frozenset)
    kvm_works: bool = False                       # /dev/kvm opened and QEMU enabled it
    options: frozenset[str] = field(default_factory=frozenset)          # "-spice", "-runas", ...
    aio_modes: frozenset[str] = frozenset({"threads"})
    block_drivers: frozenset[str] = field(default_factory=frozenset)    # "file", "http", ...
    migration_caps: frozenset[str] = field(default_factory=frozenset)

    def resolve_machine(self, wanted: str) -> str:
        """The concrete machine type for ``wanted`` ("" = the binary's default)."""
        if not wanted:
            return self.default_machine
        if wanted not in self.machines:
            raise HypervisorError(f"QEMU {self.binary} ({self.version}) has no machine type {wanted!r}")
        return self.machines[wanted]


_cache: dict[tuple[str, int], Capabilities] = {}
_cache_lock = threading.Lock()


def kvm_device_opens() -> bool:
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError:
        return False
    return True


def slow_nested_kvm() -> str | None:
    """The loaded KVM module that makes KVM guests useless here, if any."""
    for module in SLOW_NESTED_MODULES:
        if Path("/sys/module", module).exists():
            return module
    return None


def probe(binary: str) -> Capabilities:
    """Capabilities of ``binary``, probed once per (path, mtime)."""
    try:
        key = (binary, os.stat(binary).st_mtime_ns)
    except OSError as err:
        raise HypervisorError(f"QEMU binary {binary}: {err.strerror}") from None
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _run_probe(binary)
        return _cache[key]


PROBE_ATTEMPTS = 3


def _run_probe(binary: str) -> Capabilities:
    accel = "kvm:tcg" if kvm_device_opens() else "tcg"
    requests = ["qmp_capabilities", "query-version", "query-kvm", "query-machines", "query-commands",
                "query-migrate-capabilities", "query-qmp-schema", "quit"]
    stdin = "".join(json.dumps({"execute": r, "id": r}) + "\n" for r in requests)
    argv = [binary, "-machine", f"none,accel={accel}", "-nodefaults", "-display", "none", "-qmp", "stdio"]
    for _ in range(PROBE_ATTEMPTS):     # a busy machine may see QEMU quit before its longest answer is out
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise HypervisorError(f"probing QEMU {binary} failed: {err}") from None
        replies = {}
        for line in proc.stdout.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "id" in msg and "return" in msg:
                replies[msg["id"]] = msg["return"]
        if set(requests) - {"quit"} <= set(replies):
            break
    if "query-machines" not in replies:
        raise HypervisorError(f"probing QEMU {binary} failed: {proc.stderr.strip()[-500:] or 'no answer'}")
    v = replies["query-version"]["qemu"]
    machines: dict[str, str] = {}
    default = ""
    for m in replies["query-machines"]:
        machines[m["name"]] = m["name"]
        if m.get("alias"):
            machines[m["alias"]] = m["name"]
        if m.get("is-default"):
            default = m["name"]
    kvm = replies.get("query-kvm", {})
    enums = [frozenset(t.get("values", [])) for t in replies.get("query-qmp-schema", []) if t["meta-type"] == "enum"]
    return Capabilities(binary=binary, version=f"{v['major']}.{v['minor']}.{v['micro']}",
                        machines=machines, default_machine=default,
                        commands=frozenset(c["name"] for c in replies.get("query-commands", [])),
                        kvm_works=bool(kvm.get("enabled") and kvm.get("present")),
                        options=_options(binary),
                        aio_modes=next((e for e in enums if {"threads", "native"} <= e), frozenset({"threads"})),
                        block_drivers=next((e for e in enums if {"file", "raw", "nbd"} <= e), frozenset()),
                        migration_caps=frozenset(c["capability"]
                                                 for c in replies.get("query-migrate-capabilities", [])))


def _options(binary: str) -> frozenset[str]:
    """The command line options ``binary -help`` lists."""
    try:
        out = subprocess.run([binary, "-help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        raise HypervisorError(f"probing QEMU {binary} failed: {err}") from None
    return frozenset(line.split()[0] for line in out.splitlines() if line.startswith("-"))


def choose_accel(wanted: str, caps: Capabilities, instance: str) -> str:
    """The accelerator for one start, with the reason in the log.

    ``auto`` takes KVM only when /dev/kvm opens, QEMU enabled it in the probe and
    no known-slow nested KVM module is loaded; otherwise TCG, with a warning.
    ``kvm`` is honoured (and fails clearly where KVM cannot work); ``tcg`` always works.
    """
    if wanted == "tcg":
        return "tcg"
    if wanted == "kvm":
        if not caps.kvm_works:
            raise HypervisorError(f"instance {instance}: accel=kvm but KVM is not usable "
                                  f"(/dev/kvm missing, not openable, or refused by {caps.binary})")
        return "kvm"
    if not caps.kvm_works:
        log.warning("instance %s: accel=auto uses TCG: KVM is not usable on this node", instance)
        return "tcg"
    module = slow_nested_kvm()
    if module:
        log.warning("instance %s: accel=auto uses TCG: KVM runs through nested module %s, where guests "
                    "are extremely slow; set accel=kvm to force KVM", instance, module)
        return "tcg"
    log.info("instance %s: accel=auto uses KVM", instance)
    return "kvm"
