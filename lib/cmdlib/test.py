"""Logical units for testing the job machinery (gnt-debug delay, test-jobqueue, test-osparams) and the
allocator protocol (gnt-debug iallocator)."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from typing import Iterator

from genet import errors, opcodes
from genet.cmdlib import iallocator
from genet.cmdlib.base import LogicalUnit
from genet.locking import Level
from genet.opcodes.test import (ELOG_JQUEUE_TEST, JQT_EXEC, JQT_EXPANDNAMES, JQT_LOGMSG, JQT_MSGPREFIX,
                                 JQT_STARTMSG)

ELOG_DELAY_TEST = "delay-test"          # Ganeti's log type: a socket to interrupt the delay on
CLIENT_CONNECT_TIMEOUT = 20.0           # test-jobqueue's client connects within (Ganeti's)
CLIENT_CONFIRM_TIMEOUT = 60.0


@contextlib.contextmanager
def listening_socket() -> Iterator[tuple[socket.socket, str]]:
    """A unix socket in a private temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="genet-test-") as folder:
        path = os.path.join(folder, "sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(1)
            yield sock, path
        finally:
            sock.close()


class LUTestDelay(LogicalUnit):
    """Sleep on the master and/or nodes; exercises queue, locks and RPC. As Ganeti's, it locks the
    nodes it sleeps on (the master's node when it sleeps there) exclusively, so two delays queue
    one behind the other (unless ``no_locks``)."""
    OPCODE = opcodes.OpTestDelay
    REQ_BGL = False

    def expand_names(self):
        nodes = set(self.op.on_nodes)
        if self.op.on_master:
            nodes.add(self.cfg.read(lambda d: d.cluster["master_node"]))
        if nodes and not self.op.no_locks:
            self.needed_locks[Level.NODE] = sorted(nodes)

    def check_prereq(self):
        for name in self.op.on_nodes:
            self.node(name)         # refuses a node not in the cluster

    def exec(self):
        """Ganeti's: without ``repeat`` one delay that logs nothing (a script's ``$(gnt-debug delay
        --print-jobid ...)`` is the job's ID), else ``repeat`` delays, each logged as an iteration."""
        if not self.op.repeat:
            self._delay()
        for iteration in range(self.op.repeat):
            self.feedback(f"Test delay iteration {iteration}/{self.op.repeat - 1}")
            if self._delay():
                break
        return True

    def _delay(self) -> bool:
        """One delay: the master sleeps, then the nodes at the same time; True if interrupted."""
        if self.op.interruptible:
            return self._interruptible_delay()
        if self.op.on_master:
            self.clock.sleep(self.op.duration)
        if self.op.on_nodes:
            for res in self.rpc.test_delay.on(self.op.on_nodes, self.op.duration).values():
                res.raise_on_error()
        return False

    def _interruptible_delay(self) -> bool:
        """Wait ``duration`` seconds on a socket whose path the log tells; True when someone
        connected and sent a byte before the time was up."""
        start = time.monotonic()
        with listening_socket() as (sock, path):
            self.feedback([path], ELOG_DELAY_TEST)
            sock.settimeout(self.op.duration)
            try:
                conn, _ = sock.accept()
            except (socket.timeout, TimeoutError):
                return False
        with conn:
            left = max(0.0, self.op.duration - (time.monotonic() - start))
            self.feedback(f"Received connection, time to go is {left:.0f}")
            conn.settimeout(left)
            try:
                if not conn.recv(1):
                    return False
            except (socket.timeout, TimeoutError):
                return False
        self.feedback(f"Interrupted, time spent waiting: {time.monotonic() - start:.0f}")
        return True


class LUTestJqueue(LogicalUnit):
    """Tell a waiting client (gnt-debug test-jobqueue) each phase of the job, so it can check the
    job's status at that moment: the client connects to the socket the log names and closes it."""
    OPCODE = opcodes.OpTestJqueue
    REQ_BGL = False

    def expand_names(self):
        if self.op.notify_waitlock:
            self._notify(JQT_EXPANDNAMES, None, errors.OpPrereqError)
        self.feedback("Expanding names")
        self.needed_locks[Level.NODE] = [self.cfg.read(lambda d: d.cluster["master_node"])]

    def exec(self):
        if self.op.notify_exec:
            self._notify(JQT_EXEC, None)
        self.feedback("Executing")
        if self.op.log_messages:
            self._notify(JQT_STARTMSG, len(self.op.log_messages))
            for index, message in enumerate(self.op.log_messages):
                self.feedback(f"Sending log message {index + 1}")
                self.feedback(JQT_MSGPREFIX + message)
                self._notify(JQT_LOGMSG, index + 1)
        if self.op.fail:
            raise errors.OpExecError("Opcode failure was requested")
        return True

    def _notify(self, test: str, arg, error: type[errors.GenericError] = errors.OpExecError) -> None:
        with listening_socket() as (sock, path):
            self.feedback([path, test, arg], ELOG_JQUEUE_TEST)
            sock.settimeout(CLIENT_CONNECT_TIMEOUT)
            try:
                conn, _ = sock.accept()
            except OSError as err:
                raise error(f"Client didn't connect in time ({err})") from None
        with conn:
            conn.settimeout(CLIENT_CONFIRM_TIMEOUT)
            try:
                conn.recv(1)
            except OSError as err:
                raise error(f"Client failed to confirm notification ({err})") from None


class LUTestOsParams(LogicalUnit):
    """Log the secret OS parameters the job carried (gnt-debug test-osparams)."""
    OPCODE = opcodes.OpTestOsParams
    REQ_BGL = False

    def exec(self):
        if not self.op.osparams_secret:
            raise errors.OpExecError("Opcode needs secret parameters")
        self.feedback(f"Secret OS parameters: {self.op.osparams_secret}")


class LUTestAllocator(LogicalUnit):
    """Build an iallocator request as Ganeti's doc/iallocator.rst describes it and show it (direction
    in), or run the named allocator (genet's built-in hail or a program) on it and show its answer
    (direction out)."""
    OPCODE = opcodes.OpTestAllocator
    REQ_BGL = False

    def expand_names(self):
        self.needed_locks[Level.NODE] = sorted(self.cfg.read(lambda d: list(d.nodes)))
        self.share_locks[Level.NODE] = True

    def check_prereq(self):
        data = self.cfg.snapshot()
        op = self.op
        if op.mode in ("allocate", "multi-allocate"):
            if op.disk_template is None:
                raise errors.OpPrereqError("Missing attribute 'disk_template' on opcode input", errors.ECode.INVAL)
            if op.name in data.instances:
                raise errors.OpPrereqError(f"Instance '{op.name}' already in the cluster", errors.ECode.EXISTS)
            for disk in op.disks:
                if not isinstance(disk.get("size"), int) or disk.get("mode") not in ("rw", "ro"):
                    raise errors.OpPrereqError("Invalid contents of the 'disks' parameter", errors.ECode.INVAL)
        elif op.mode == "relocate":
            if op.name not in data.instances:
                raise errors.OpPrereqError(f"instance {op.name!r} is not in the cluster", errors.ECode.NOENT)
        elif not op.instances:
            raise errors.OpPrereqError("Missing instances", errors.ECode.INVAL)
        if op.direction == "out":
            if op.iallocator is None:
                raise errors.OpPrereqError("Missing allocator name", errors.ECode.INVAL)
            iallocator.check(op.iallocator)

    def exec(self):
        data = self.cfg.snapshot()
        msg = iallocator.message(self, data, self._request_part(data))
        if self.op.direction == "in":
            return json.dumps(msg, sort_keys=True, indent=2)
        return json.dumps(iallocator.run(self.op.iallocator, msg, iallocator.arguments(data)))

    def _request_part(self, data) -> dict:
        op = self.op
        if op.mode in ("change-group", "node-evacuate"):
            part = {"type": op.mode, "instances": list(op.instances)}
            part.update({"target_groups": list(op.target_groups)} if op.mode == "change-group"
                        else {"evac_mode": op.evac_mode})
            return part
        if op.mode == "relocate":
            inst = data.instances[op.name]
            return {"type": "relocate", "name": op.name, "required_nodes": 1,
                    "disk_space_total": sum(d["size"] for d in inst["disks"]),
                    "relocate_from": list(inst["secondary_nodes"]) or [inst["primary_node"]]}
        hypervisor = op.hypervisor or data.cluster["enabled_hypervisors"][0]
        one = {"name": op.name, "disks": list(op.disks), "nics": list(op.nics), "vcpus": op.vcpus,
               "memory": op.memory, "spindle_use": op.spindle_use,
               "disk_template": iallocator.ganeti_template(op.disk_template),
               "os": op.os, "tags": list(op.tags), "hypervisor": hypervisor,
               "required_nodes": iallocator.required_nodes(op.disk_template),
               "disk_space_total": sum(d["size"] for d in op.disks)}
        if op.mode == "allocate":
            return {"type": "allocate", **one}
        return {"type": "multi-allocate",
                "instances": [{**one, "name": f"{op.name}{i}"} for i in range(op.count)]}
