"""Instance lifecycle: remove, start, stop, reboot, console, rename, reinstall."""
from __future__ import annotations

import time
from typing import Callable

from genet import errors, opcodes, params
from genet.cmdlib.common import (InstanceLU, check_beparams, refuse_forthcoming, check_hvparams, check_name_and_ip, check_os, free_memory,
                                 instance_of, is_running, set_admin_state, storage_params)
from genet.cmdlib.disks import remove_all_disks
from genet.cmdlib.nics import NAME_RE, release_nic_ips
from genet.cmdlib.power import clear_leftover, start_instance, stop_instance
from genet.locking import Level


def _ask_primary(lu: InstanceLU, call: Callable, any_failure: bool = True):
    """``call(node, name, hypervisor)`` on the instance's primary node. A node the master cannot
    reach (with ``any_failure``, any failed answer) refuses the opcode (ENVIRON)."""
    node = lu.inst.primary_node
    res = call(node, lu.inst.name, lu.inst.hypervisor)
    if res.failed and (any_failure or isinstance(res.error, errors.RpcError)):
        raise errors.OpPrereqError(f"cannot reach node {node}: {res.fail_msg}", errors.ECode.ENVIRON)
    return res


def _remember(lu: InstanceLU, state: str) -> bool:
    """Startup and shutdown record the state the admin asked for, unless told not to (no_remember)
    or the instance is offline (a forced shutdown keeps that mark, as Ganeti's)."""
    if not lu.op.no_remember and lu.inst.admin_state != "offline":
        set_admin_state(lu, lu.inst.name, state)
    return True


def check_not_offline(inst, doing: str) -> None:
    """Ganeti's offline instances: nothing runs them until ``modify --online`` brings them back."""
    if inst.admin_state == "offline":
        raise errors.OpPrereqError(f"Instance '{inst['name']}' is marked to be offline, {doing}"
                                   " (gnt-instance modify --online first)", errors.ECode.WRONG_STATE)


class _NameGoingLU(InstanceLU):
    """An LU after which the instance's name is gone from the config (removed, renamed): once
    it set ``name_gone``, the lock of that name goes too."""
    name_gone = False

    def cleanup(self, failed: bool) -> None:
        if self.name_gone:
            self.ctx.glm.remove(Level.INSTANCE, [self.op.instance_name], owner=self.owner)


class LUInstanceRemove(_NameGoingLU):
    OPCODE = opcodes.OpInstanceRemove
    HPATH = "instance-remove"

    def check_prereq(self):
        self.inst = instance_of(self, self.op.instance_name)

    def hooks_env(self):
        return {**super().hooks_env(), "SHUTDOWN_TIMEOUT": self.op.shutdown_timeout}

    def hooks_nodes(self):
        master = self.master_node()
        return [master], [*self.inst.all_nodes, master]

    def exec(self):
        inst = self.inst
        node = self.cfg.read(lambda d: d.nodes.get(inst.primary_node))
        if node is not None and not node["offline"] and not inst.get("forthcoming"):   # reserved only: nothing there
            self.feedback(f"* shutting down instance {inst['name']} on {inst['primary_node']}")
            try:
                stop_instance(self, inst, self.op.shutdown_timeout)
            except errors.OpExecError:
                if not self.op.ignore_failures:
                    raise
                self.feedback("Warning: could not stop the instance, removing it anyway")
            failures = remove_all_disks(self, inst)
            if failures and not self.op.ignore_failures:
                raise errors.OpExecError(f"could not remove the disks of {inst['name']}: {'; '.join(failures)}")
        self.cfg.update(lambda d: (release_nic_ips(d, inst.nics), d.instances.pop(inst.name)))
        self.name_gone = True
        return True


class _PowerLU(InstanceLU):
    """Startup and shutdown: with ignore_offline_nodes, an offline primary only has the new
    state recorded (Ganeti's --ignore-offline)."""

    def check_prereq(self):
        self.inst = instance_of(self, self.op.instance_name)
        refuse_forthcoming(self.inst)
        self.check_offline()
        self.primary_offline = self.op.ignore_offline_nodes and self.cfg.read(
            lambda d: d.nodes[self.inst.primary_node].offline)
        if self.primary_offline:
            self.feedback(f"Ignoring offline primary node {self.inst.primary_node}: only recording the state")
        else:
            super().check_prereq()

    def check_offline(self) -> None:
        check_not_offline(self.inst, "cannot start it")


class LUInstanceStartup(_PowerLU):
    OPCODE = opcodes.OpInstanceStartup
    HPATH = "instance-start"

    def hooks_env(self):
        return {"FORCE": self.op.force, **super().hooks_env()}

    def check_prereq(self):
        super().check_prereq()
        if self.primary_offline:
            return
        if self.op.hvparams:
            check_hvparams(self.inst.hypervisor, {**self.inst.hvparams, **self.op.hvparams})
        # this start's parameters: the instance's, with -H/-B over them (not recorded)
        self.started = self.inst.replace(hvparams={**self.inst.hvparams, **self.op.hvparams},
                                         beparams=check_beparams({**self.inst.beparams,
                                                                  **params.normalised_beparams(self.op.beparams)}))
        self.running, self.leftover = running_state(self)
        if not self.running:
            need_memory(self, self.inst.primary_node, self.started)

    def exec(self):
        if not self.primary_offline and not self.running:
            if self.leftover:
                stop_instance(self, self.inst, 0, force=True)   # clear a powered-off process
            start_instance(self, self.started, force=self.op.force, paused=self.op.startup_paused)
        return _remember(self, "up")


class LUInstanceShutdown(_PowerLU):
    """Ganeti's: an offline instance is shut down only with --force (e.g. one found ERROR_up)."""
    OPCODE = opcodes.OpInstanceShutdown
    HPATH = "instance-stop"

    def hooks_env(self):
        return {**super().hooks_env(), "TIMEOUT": self.op.timeout}

    def check_offline(self) -> None:
        if not self.op.force:
            check_not_offline(self.inst, "cannot shut it down without --force")
        elif self.inst.admin_state == "offline":
            self.feedback(f"Warning: instance {self.inst.name} is offline, shutting it down anyway (--force)")

    def exec(self):
        if not self.primary_offline:
            stop_instance(self, self.inst, self.op.timeout)
        return _remember(self, "down")


def running_state(lu: InstanceLU) -> tuple[bool, bool]:
    """(runs, leftover): whether the primary runs the instance, and whether a process of it is
    left there that does not run (a guest that powered itself off)."""
    res = _ask_primary(lu, lu.rpc.instance_info)
    running = bool(res.payload) and res.payload.get("state") == "running"
    return running, bool(res.payload) and not running


def need_memory(lu: InstanceLU, node: str, inst) -> None:
    """Refuse a start the node has not the memory for (the instance's maxmem)."""
    free = free_memory(lu, node, inst.hypervisor)
    need = inst.beparams["maxmem"]
    if free < need:
        raise errors.OpPrereqError(f"not enough memory on node {node} to start {inst['name']}:"
                                   f" needed {need} MiB, free {free} MiB", errors.ECode.NORES)


class LUInstanceReboot(InstanceLU):
    """Ganeti's reboot: a running instance is rebooted the way asked; a stopped one is started."""
    OPCODE = opcodes.OpInstanceReboot
    HPATH = "instance-reboot"

    def hooks_env(self):
        return {"IGNORE_SECONDARIES": self.op.ignore_secondaries, "REBOOT_TYPE": self.op.reboot_type,
                "SHUTDOWN_TIMEOUT": self.op.shutdown_timeout, **super().hooks_env()}

    def check_prereq(self):
        super().check_prereq()
        check_not_offline(self.inst, "cannot reboot it")
        self.running, self.leftover = running_state(self)
        if not self.running:
            need_memory(self, self.inst.primary_node, self.inst)

    def exec(self):
        inst = self.inst
        if not self.running:
            if self.leftover:
                stop_instance(self, inst, 0, force=True)
            start_instance(self, inst, force=self.op.ignore_secondaries)
        elif self.op.reboot_type == "full":
            stop_instance(self, inst, self.op.shutdown_timeout)
            start_instance(self, inst, force=self.op.ignore_secondaries)
        else:
            res = self.rpc.instance_reboot(inst.primary_node, inst.name, inst.hypervisor,
                                           self.op.reboot_type == "hard")
            if res.failed:
                raise errors.OpExecError(f"could not reboot {inst['name']}: {res.fail_msg}")
        set_admin_state(self, inst.name, "up")
        return True


class LUInstanceConsole(InstanceLU):
    """Ganeti's console description: a command to run on the primary node over SSH."""
    OPCODE = opcodes.OpInstanceConsole

    def check_prereq(self):
        super().check_prereq()
        res = _ask_primary(self, self.rpc.instance_console, any_failure=False)
        if res.failed:
            raise errors.OpPrereqError(f"instance {self.inst['name']} is not running, it has no console",
                                       errors.ECode.WRONG_STATE)
        self.console = res.payload

    def exec(self):
        node = self.node(self.inst.primary_node)
        out = {"instance": self.inst.name, "kind": self.console["kind"], "host": node["primary_ip"]}
        if self.console["kind"] == "serial":
            out.update(kind="ssh", user="root", log=self.console.get("log"),
                       command=["socat", "STDIO,raw,echo=0,escape=0x1d", f"UNIX-CONNECT:{self.console['path']}"])
        elif "vnc" in self.console:
            host = self.console["vnc"]["host"]
            out.update(kind="vnc", host=node["primary_ip"] if host in ("0.0.0.0", "::") else host,
                       port=self.console["vnc"]["port"],
                       display=self.console["vnc"]["port"] - 5900)
        else:
            raise errors.OpExecError(f"instance {self.inst['name']} has neither a serial console nor VNC")
        return out


class LUInstanceRename(_NameGoingLU):
    OPCODE = opcodes.OpInstanceRename
    REQ_BGL = True        # a new name: nothing else may take it meanwhile
    HPATH = "instance-rename"

    def hooks_env(self):
        return {**super().hooks_env(), "INSTANCE_NEW_NAME": self.op.new_name}

    def check_prereq(self):
        super().check_prereq()
        new = self.op.new_name
        if not NAME_RE.match(new):
            raise errors.OpPrereqError(f"invalid instance name {new!r}: use a host name", errors.ECode.INVAL)
        if self.cfg.read(lambda d: new in d.instances):
            raise errors.OpPrereqError(f"instance {new!r} already exists", errors.ECode.EXISTS)
        if is_running(self, self.inst):
            raise errors.OpPrereqError(f"instance {self.inst['name']} is running; stop it before renaming",
                                       errors.ECode.WRONG_STATE)
        check_name_and_ip(new, self.op.name_check, self.op.ip_check)

    def exec(self):
        inst, old, new = self.inst, self.inst.name, self.op.new_name
        clear_leftover(self, inst)
        if inst.disks:
            self._rename_disks(inst, old, new)

        def change(data):
            moved = data.instances.pop(old)
            moved.update(name=new, serial_no=moved["serial_no"] + 1, mtime=time.time())
            data.instances[new] = moved
        self.cfg.update(change)
        self.ctx.glm.add(Level.INSTANCE, [new])
        self.name_gone = True
        if inst.disks:
            res = self.rpc.os_rename(inst.primary_node, inst.replace(name=new), old, storage_params(self))
            if res.failed:
                self.feedback(f"Warning: the OS rename script failed: {res.fail_msg}")
        return new

    def _rename_disks(self, inst, old: str, new: str) -> None:
        """On every node that holds them (a mirrored instance's secondary too); if one node
        fails, the nodes done already get the old name back."""
        done = []
        for node in inst.all_nodes:
            res = self.rpc.blockdev_rename(node, old, new, inst.disk_template, inst.disks, storage_params(self))
            if res.failed:
                for back in done:
                    undo = self.rpc.blockdev_rename(back, new, old, inst.disk_template, inst.disks,
                                                    storage_params(self))
                    if undo.failed:
                        self.feedback(f"Warning: the disks on {back} keep the name {new}: {undo.fail_msg}")
                res.raise_on_error(f"renaming the disks on {node}")
            done.append(node)


class LUInstanceReinstall(InstanceLU):
    OPCODE = opcodes.OpInstanceReinstall
    HPATH = "instance-reinstall"

    def check_prereq(self):
        super().check_prereq()
        inst = self.inst
        if is_running(self, inst):
            raise errors.OpPrereqError(f"instance {inst['name']} is running; stop it before reinstalling",
                                       errors.ECode.WRONG_STATE)
        if not inst.disks:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disks to install on", errors.ECode.WRONG_STATE)
        check_not_offline(inst, "cannot reinstall it")
        self.os = self.op.os_type or inst.os
        own = instance_of(self, inst.name, filled=False)
        self.osparams = own.get("osparams", {}) if self.op.osparams is None else self.op.osparams
        self.private = own.get("osparams_private", {}) if self.op.osparams_private is None \
            else self.op.osparams_private
        self.script_params = script_osparams(self.osparams, self.private, self.op.osparams_secret)
        check_os(self, inst.primary_node, self.os, self.script_params)

    def exec(self):
        inst = self.inst.replace(os=self.os, osparams=self.script_params)
        clear_leftover(self, inst)
        self.feedback(f"* running the OS create script of {self.os} (reinstall)")
        self.rpc.os_create(inst.primary_node, inst, storage_params(self), True) \
            .raise_on_error(f"reinstalling {self.os}")

        def change(data):
            target = data.instances[inst.name]
            target.update(os=self.os, osparams=self.osparams, serial_no=target["serial_no"] + 1, mtime=time.time())
            if self.private:
                target["osparams_private"] = self.private
            else:
                target.pop("osparams_private", None)
        self.cfg.update(change)
        return True


def script_osparams(osparams: dict, private: dict | None, secret: dict | None) -> dict:
    """What the OS scripts receive (Ganeti's): the instance's OS parameters, then its private
    ones, then this job's secret ones (never stored)."""
    return {**osparams, **(private or {}), **(secret or {})}
