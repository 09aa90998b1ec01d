"""What the instance logical units share: finding an instance and its nodes, checking them,
asking a node about the instance."""
from __future__ import annotations

import copy
import time

from genet import config, errors, opcodes, params
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.hooks_env import instance_env, instance_nodes
from genet.locking import Level


def check_os(lu: LogicalUnit, node: str, os_name: str, osparams: dict, install: bool = True) -> None:
    """The OS (and variant) exists and takes these parameters on ``node``; to ``install`` it, the
    cluster must not have blacklisted it (gnt-os modify --blacklisted)."""
    blacklisted = lu.cfg.read(lambda d: d.cluster.blacklisted_os)
    if install and {os_name, os_name.split("+", 1)[0]} & set(blacklisted):
        raise errors.OpPrereqError(f"Guest OS {os_name!r} is not allowed for installation (blacklisted)",
                                   errors.ECode.WRONG_STATE)
    res = lu.rpc.os_validate(node, os_name, osparams)
    if res.failed:
        raise errors.OpPrereqError(f"OS {os_name!r} cannot be used on node {node}: {res.fail_msg}",
                                   errors.ECode.INVAL)


def instance_of(lu: LogicalUnit, name: str, filled: bool = True) -> dict:
    """A copy of the instance's config: the LU's view stays as it was while the config changes.
    ``filled``: with the backend and hypervisor parameters that apply (genet.params), as the
    LUs check and start it; else only those set on the instance, as recorded."""
    def read(d):
        inst = d.instances.get(name)
        if inst is None:
            return None
        return params.filled(d, inst) if filled else copy.deepcopy(inst)
    inst = lu.cfg.read(read)
    if inst is None:
        raise errors.OpPrereqError(f"instance {name!r} does not exist", errors.ECode.NOENT)
    return inst


def storage_params(lu: LogicalUnit) -> dict:
    return lu.cfg.read(config.storage_params)


def node_address(lu: LogicalUnit, name: str) -> str:
    return lu.node(name)["primary_ip"]


def check_node_online(lu: LogicalUnit, name: str) -> dict:
    node = lu.node(name)
    if node["offline"]:
        raise errors.OpPrereqError(f"node {name} is offline", errors.ECode.WRONG_STATE)
    return node


def free_memory(lu: LogicalUnit, node: str, hypervisor: str) -> int:
    res = lu.rpc.hv_node_info(node, hypervisor)
    if res.failed:
        raise errors.OpPrereqError(f"cannot get memory of node {node}: {res.fail_msg}", errors.ECode.ENVIRON)
    return int(res.payload["memory_free"])


def set_admin_state(lu: LogicalUnit, name: str, state: str) -> None:
    def change(data):
        inst = data.instances[name]
        inst["admin_state"] = state
        inst["serial_no"] += 1
        inst["mtime"] = time.time()
    lu.cfg.update(change)


def is_running(lu: LogicalUnit, inst: dict) -> bool:
    info = lu.rpc.instance_info(inst.primary_node, inst.name,
                                inst.hypervisor).raise_on_error("asking whether the instance runs")
    return bool(info) and info.get("state") == "running"


class InstanceLU(LogicalUnit):
    """An LU acting on one existing instance: locks it and its primary node. Its hooks (when it
    names an HPATH) get the instance's variables and run on the master and the instance's nodes."""
    REQ_BGL = False
    HTYPE = "INSTANCE"

    def hooks_env(self):
        return instance_env(self, self.inst)

    def hooks_nodes(self):
        return instance_nodes(self, self.inst)

    def expand_names(self):
        instance_of(self, self.op.instance_name)        # "does not exist", not a missing lock
        self.needed_locks[Level.INSTANCE] = [self.op.instance_name]

    def declare_locks(self, level):
        if level == Level.NODE:
            inst = instance_of(self, self.op.instance_name)
            self.needed_locks[Level.NODE] = [inst.primary_node, *inst.get("secondary_nodes", [])]

    def check_prereq(self):
        self.inst = instance_of(self, self.op.instance_name)
        refuse_forthcoming(self.inst)
        check_node_online(self, self.inst.primary_node)


def refuse_forthcoming(inst: dict) -> None:
    """A forthcoming instance (Ganeti's) is only reserved: it has nothing on its nodes to act on."""
    if inst.get("forthcoming"):
        raise errors.OpPrereqError(f"instance {inst['name']} is forthcoming (only reserved): create it with"
                                   " gnt-instance add --commit, or remove it", errors.ECode.WRONG_STATE)


def check_name_and_ip(name: str, name_check: bool, ip_check: bool) -> None:
    """Ganeti's name and IP checks of a new or renamed instance: the name resolves, and
    (ip_check) nothing answers at its address yet. Off unless asked for (genet does not
    use the name to reach the guest)."""
    if ip_check and not name_check:
        raise errors.OpPrereqError("the IP check needs the name check (name_check)", errors.ECode.INVAL)
    if not name_check:
        return
    from genet import netutils
    address = netutils.resolve(name)
    if ip_check:
        import subprocess
        alive = subprocess.run(["ping", "-c", "1", "-W", "1", address], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL).returncode == 0
        if alive:
            raise errors.OpPrereqError(f"IP address {address} of {name} already answers (ip_check)",
                                       errors.ECode.NOTUNIQUE)


def split_nodes(pnode: str | None, snode: str | None) -> tuple[str | None, str | None]:
    """Ganeti's ``-n PRIMARY:SECONDARY``."""
    if pnode and ":" in pnode:
        pnode, _, second = pnode.partition(":")
        if snode and snode != second:
            raise errors.OpPrereqError(f"two secondary nodes given: {second} and {snode}", errors.ECode.INVAL)
        snode = second
    return pnode or None, snode or None


def applied(lu: LogicalUnit, inst):
    """``inst`` with the parameters that apply filled in (as instance_of gives it): what a node's
    hypervisor and OS scripts receive. Filling a filled instance changes nothing."""
    return lu.cfg.read(lambda d: params.filled(d, inst))


def check_beparams(beparams: dict) -> dict:
    """Refuse backend parameters that cannot apply together (minmem above maxmem)."""
    if beparams["minmem"] > beparams["maxmem"]:
        raise errors.OpPrereqError(f"minmem ({beparams['minmem']}) is larger than maxmem ({beparams['maxmem']})",
                                   errors.ECode.INVAL)
    return beparams


def check_hvparams(hypervisor: str, hvparams: dict) -> None:
    """Refuse hypervisor parameters the hypervisor does not take (named by it)."""
    from genet.hypervisor import base as hvbase
    try:
        hvbase.HYPERVISORS.cls(hypervisor).check_parameters(hvparams)
    except (hvbase.HypervisorError, LookupError) as err:      # LookupError: no such hypervisor
        raise errors.OpPrereqError(str(err).strip("'\""), errors.ECode.INVAL) from None


def checked_ipolicy(policy: dict) -> dict:
    """An instance policy as it will apply, refused unless it holds together (Ganeti's rules):
    each min/max pair complete with min <= max, and the standard specs within a pair. A pair
    given only in part takes the rest from the first pair of the policy before."""
    pairs = policy.get("minmax") or []
    if not pairs:
        raise errors.OpPrereqError("an instance policy needs at least one min/max pair", errors.ECode.INVAL)
    for index, pair in enumerate(pairs):
        for spec in opcodes.ISPECS:
            low, high = pair["min"].get(spec), pair["max"].get(spec)
            if low is None or high is None:
                raise errors.OpPrereqError(f"instance policy: min/max pair {index} has no {spec}", errors.ECode.INVAL)
            if low > high:
                raise errors.OpPrereqError(f"instance policy: {spec} minimum {low} is above its maximum {high}",
                                           errors.ECode.INVAL)
    for spec, value in policy.get("std", {}).items():
        if not any(pair["min"][spec] <= value <= pair["max"][spec] for pair in pairs):
            raise errors.OpPrereqError(f"instance policy: standard {spec} {value} is outside the min/max bounds",
                                       errors.ECode.INVAL)
    return policy


def changed_ipolicy(own: dict, effective: dict, changes: dict) -> dict:
    """An object's own policy after ``changes`` (a partial min/max pair filled from ``effective``'s
    first one); ``default`` drops a key."""
    changes = dict(changes)
    if changes.get("minmax") and changes["minmax"] != params.RESET:
        first = (effective.get("minmax") or [{"min": {}, "max": {}}])[0]
        changes["minmax"] = [{bound: {**first[bound], **pair[bound]} for bound in ("min", "max")}
                             for pair in changes["minmax"]]
    if isinstance(changes.get("std"), dict):
        changes["std"] = {**effective.get("std", {}), **changes["std"]}
    return params.changed(own, changes)


def check_template_enabled(lu: LogicalUnit, template: str) -> None:
    """Refuse a disk template the cluster has not enabled (gnt-cluster modify --enabled-disk-templates)."""
    from genet.storage.units import enabled_templates
    enabled = lu.cfg.read(lambda d: enabled_templates(d.cluster))
    if template not in enabled:
        raise errors.OpPrereqError(f"disk template {template!r} is not enabled in this cluster (enabled:"
                                   f" {', '.join(enabled)})", errors.ECode.WRONG_STATE)
