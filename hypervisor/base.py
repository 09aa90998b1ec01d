"""The hypervisor interface: what noded asks of a backend, one small set of steps.

A backend receives an instance as genet.objects.InstanceRuntime: the config's instance with
its disks resolved to how to open them (DiskAccess), so backends need nothing from the master. Long operations
(migration) are split into steps the master drives and polls; repeating a step
is harmless where it can be.
"""
from __future__ import annotations

import abc
import enum
from typing import TYPE_CHECKING

from genet.errors import HypervisorError
from genet.registry import Registry

if TYPE_CHECKING:       # (the gnt-* commands import this module for the names: keep it light)
    from genet.objects import InstanceRuntime as Instance


class HvState(str, enum.Enum):
    RUNNING = "running"      # the guest runs (or is paused for migration)
    SHUTDOWN = "shutdown"    # the guest powered itself off; the process still exists
    CRASHED = "crashed"      # the process died without being asked to stop




HYPERVISORS: Registry["Hypervisor"] = Registry("hypervisor", "genet.hypervisor")


class Hypervisor(abc.ABC):
    """One backend. Every method raises HypervisorError on failure. A subclass that sets ``name``
    registers itself (genet.registry)."""
    name: str = ""
    PARAMETERS: dict = {}       # the hvparams it takes: name -> genet.hypervisor.params.Param

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if register and cls.__dict__.get("name"):
            HYPERVISORS.add(cls)

    @classmethod
    def on_this_node(cls) -> "Hypervisor":
        """The backend as genet-noded runs it on this node."""
        return cls()

    @classmethod
    def check_parameters(cls, hvparams: dict) -> None:
        """Refuse unknown or malformed hvparams before anything is created."""
        from genet.hypervisor import params
        params.check(hvparams, cls.PARAMETERS)

    @classmethod
    def fill_parameters(cls, hvparams: dict) -> dict:
        """``hvparams`` checked, typed, with every default filled in."""
        from genet.hypervisor import params
        return params.fill(hvparams, cls.PARAMETERS)

    @abc.abstractmethod
    def start(self, inst: Instance, paused: bool = False) -> None:
        """Start the instance; returns once the guest runs (or is paused)."""

    @abc.abstractmethod
    def stop(self, name: str, timeout: float = 120.0, force: bool = False) -> None:
        """Ask the guest to power off (ACPI), wait up to ``timeout``, then kill; ``force`` kills at once.
        Stopping an instance that does not run is not an error."""

    @abc.abstractmethod
    def pause(self, name: str) -> None:
        """Freeze the guest's CPUs at once (no more writes), keeping the process: the first half
        of stopping a guest that must not run here, before it is killed."""

    @abc.abstractmethod
    def reboot(self, name: str, hard: bool = False) -> None:
        """Soft (ACPI) or hard (system_reset) reboot of a running instance."""

    @abc.abstractmethod
    def info(self, name: str) -> dict | None:
        """{"state": HvState value, "memory": MiB, "vcpus", "pid", "uptime": s, plus backend extras
        such as "runstate", "machine", "accel"} or None if unknown."""

    @abc.abstractmethod
    def list_instances(self) -> list[str]:
        """Names of the instances this backend has a process (or record) for."""

    def all_info(self) -> dict[str, dict]:
        return {name: info for name in self.list_instances() if (info := self.info(name)) is not None}

    def usage_sources(self) -> dict[str, dict]:
        """{instance: {"pid", "taps"}}: the running processes whose use of CPU, memory, disk and
        network the inst-usage collector measures (genet.inst_usage); none for a backend without
        real processes."""
        return {}

    @abc.abstractmethod
    def node_info(self) -> dict:
        """{"memory_total", "memory_free", "memory_hv" (used by guests), "cpu_total"} in MiB / count."""

    @abc.abstractmethod
    def console(self, name: str) -> dict:
        """How to reach the console: {"kind": "serial", "path": unix socket, "vnc": {"host", "port"}},
        or kind "vnc" / "none"."""

    # --- live migration (target: accept_incoming, finish_incoming; source: migrate, status, abort)

    @abc.abstractmethod
    def migration_info(self, name: str) -> dict:
        """On the source: what the target must reproduce (pinned machine type, device layout)."""

    @abc.abstractmethod
    def accept_incoming(self, inst: Instance, address: str, port: int, info: dict | None = None) -> None:
        """Start a process that waits for the migration stream on address:port; ``info`` comes from
        the source's migration_info. ``info["hold"]``: the guest stays paused after the stream
        until finish_incoming (mirrored disks switch roles in between)."""

    @abc.abstractmethod
    def migrate(self, name: str, address: str, port: int, live: bool = True,
                bandwidth: int | None = None, downtime_ms: int | None = None,
                nbd_port: int | None = None) -> None:
        """Start sending the instance to a target that is accepting; returns once the memory
        transfer started. With ``nbd_port`` the local disks are first mirrored to the target
        (which exports them there: accept_incoming's info["nbd_port"]) until in sync."""

    @abc.abstractmethod
    def migration_status(self, name: str) -> dict:
        """{"status": "active"|"completed"|"failed"|"cancelled"|"none", "ram_total", "ram_remaining",
        "total_time_ms", "downtime_ms", "error"}."""

    @abc.abstractmethod
    def abort_migration(self, name: str, resume_completed: bool = False) -> None:
        """Cancel an active outgoing migration; the source keeps running. ``resume_completed``:
        the target was held paused (accept_incoming's info["hold"]) and is gone, so a source whose
        migration completed may run again."""

    @abc.abstractmethod
    def finish_incoming(self, name: str, success: bool) -> None:
        """On the target: resume the migrated guest, or kill the waiting process on failure."""

    def balloon_memory(self, name: str, memory: int) -> None:
        """Give a running guest ``memory`` MiB (up to the maxmem it started with) by ballooning;
        ``info`` then reports it. A backend without a balloon refuses."""
        raise HypervisorError(f"hypervisor {self.name} cannot change the memory of a running instance")

    # --- hotplug

    @abc.abstractmethod
    def hotplug_disk(self, name: str, disk: dict, index: int) -> None:
        """Attach a disk to a running guest."""

    @abc.abstractmethod
    def unplug_disk(self, name: str, index: int) -> None:
        """Detach a disk from a running guest."""

    @abc.abstractmethod
    def resize_disk(self, name: str, index: int, size: int) -> None:
        """Give a running guest's disk its new size (MiB): an image file the guest holds open
        is grown here; a block device must have grown already. The guest is told at once."""

    @abc.abstractmethod
    def hotplug_nic(self, name: str, nic: dict, index: int) -> None:
        """Attach a NIC to a running guest."""

    @abc.abstractmethod
    def unplug_nic(self, name: str, index: int) -> None:
        """Detach a NIC from a running guest."""


def names() -> tuple[str, ...]:
    """Every registered hypervisor."""
    return HYPERVISORS.names()


def get(name: str) -> Hypervisor:
    """The backend called ``name`` as it runs on this node."""
    try:
        return HYPERVISORS.cls(name).on_this_node()
    except LookupError as err:
        raise HypervisorError(str(err)) from None
