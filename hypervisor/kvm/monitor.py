"""The QMP monitor of one kvm instance: genet.qmp's client, failing as the hypervisor does.

Everything a Monitor raises is a HypervisorError (MonitorError when QEMU refused a command, with
QMP's error class), so the backend, hotplug and migration report QMP failures like any other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from genet import qmp
from genet.hypervisor.base import HypervisorError


class MonitorError(HypervisorError):
    """QEMU answered a command with an error; ``error_class`` is QMP's class (GenericError, ...)."""

    def __init__(self, msg: str, error_class: str = ""):
        super().__init__(msg)
        self.error_class = error_class


class Monitor(qmp.Monitor):
    """The QMP monitor of one instance."""

    def __init__(self, sock: Path, instance: str, timeout: float = 10.0):
        super().__init__(sock, f"instance {instance}", timeout)
        self.instance = instance

    def execute_many(self, calls: list[tuple[str, dict | None]]) -> list[Any]:
        try:
            return super().execute_many(calls)
        except qmp.QmpCommandError as err:
            raise MonitorError(str(err), err.error_class) from None
        except qmp.QmpError as err:
            raise HypervisorError(str(err)) from None
