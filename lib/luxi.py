"""Luxi: the master daemon's local protocol (JSON messages ended by ETX on a unix socket).

Request ``{"method": M, "args": [...]}``, reply ``{"success": bool, "result": R}``;
a failure's result is an error in wire form (errors.to_wire). This module is the
client; it stays free of heavy imports so gnt-* commands start fast.
"""
from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from genet import errors, paths, serializer

ETX = b"\x03"
METHODS = ("SubmitJob", "SubmitManyJobs", "WaitForJobChange", "CancelJob", "ArchiveJob",
           "AutoArchiveJobs", "Query", "QueryFields", "QueryJobs", "QueryClusterInfo",
           "QueryConfigValues", "QueryTags", "SetDrainFlag", "QueryQueueInfo", "QueryMetrics",
           "SetWatcherPause", "ChangeJobPriority", "ReplaceFilter", "DeleteFilter", "QueryFilters",
           "QueryUsage")


class Client:
    def __init__(self, address: Path | None = None, timeout: float = 60.0):
        self.address = address or paths.master_socket()
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.address))
            except OSError as err:
                sock.close()
                raise _why_no_master(self.address, err) from None
            self._sock = sock
        return self._sock

    def call(self, method: str, *args: Any) -> Any:
        sock = self._connect()
        try:
            sock.sendall(serializer.dumps({"method": method, "args": list(args)}) + ETX)
            while ETX not in self._buffer:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise errors.LuxiError("the master daemon closed the connection")
                self._buffer += chunk
        except OSError as err:
            self.close()
            raise errors.LuxiError(f"error talking to the master daemon: {err}") from None
        message, _, self._buffer = self._buffer.partition(ETX)
        try:
            reply = serializer.loads(message)
            success, result = reply["success"], reply["result"]
        except (ValueError, KeyError, TypeError):
            raise errors.LuxiError(f"malformed reply from the master daemon: {message[:200]!r}") from None
        if not success:
            raise errors.from_wire(result)
        return result

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._buffer = b""

    # convenience wrappers

    def submit_job(self, ops: list[dict]) -> int:
        return self.call("SubmitJob", ops)

    def wait_for_job_change(self, job_id: int, fields: list[str], prev_info, prev_serial, timeout: float = 10.0):
        return self.call("WaitForJobChange", job_id, fields, prev_info, prev_serial, timeout)

    def query(self, what: str, fields: list[str], qfilter=None) -> dict:
        return self.call("Query", what, fields, qfilter)

    def query_jobs(self, ids: list[int] | None, fields: list[str]) -> list:
        return self.call("QueryJobs", ids, fields)


def _why_no_master(address: Path, err: OSError) -> errors.GenericError:
    """Tell apart: not in a cluster (exit 5), not the master (11), master daemon down."""
    try:
        master = paths.ssconf_file("master_node").read_text().strip()
    except OSError:
        return errors.NotClusterError(f"this node ({paths.node_name()}) is not part of a cluster")
    if master != paths.node_name():
        return errors.NotMasterError(f"this is not the master node; the master is {master}")
    return errors.LuxiError(f"cannot connect to the master daemon at {address}: {err.strerror or err};"
                            " is genet-masterd running?")


def wait_for_socket(address: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            Client(address, timeout=1).call("QueryQueueInfo")
            return True
        except errors.GenericError:
            time.sleep(0.02)
    return False
