"""Ganeti's parameter inheritance: an object records only the parameters set on it; what
applies is filled in when used, from the cluster (and per OS) down to the object, so that
changing a cluster default changes every instance that does not set its own value.

``default`` as a new value removes the object's own value (it inherits again), as in Ganeti.
"""
from __future__ import annotations

from typing import Any

from genet import config
from genet.opcodes import RESET
# Ganeti's built-in defaults of what the cluster does not set
DEFAULT_NICPARAMS = {"mode": "bridged", "link": "gnt-br0", "vlan": ""}
DEFAULT_NDPARAMS = {"oob_program": "", "spindle_count": 1, "exclusive_storage": False, "ovs": False,
                    "ovs_name": "switch1", "ovs_link": "", "ssh_port": 22, "cpu_speed": 1.0}
_ISPEC_MIN = {"memory-size": 128, "cpu-count": 1, "disk-count": 1, "disk-size": 1024, "nic-count": 1,
              "spindle-use": 1}
# Ganeti's default instance policy; its "disk-templates" (Ganeti: every template, cut down to the
# enabled ones at cluster init) are the cluster's enabled templates, filled in by ``ipolicy``
DEFAULT_IPOLICY = {
    "minmax": [{"min": dict(_ISPEC_MIN),
                "max": {"memory-size": 32768, "cpu-count": 8, "disk-count": 16, "disk-size": 1024 * 1024,
                        "nic-count": 8, "spindle-use": 12}}],
    "std": dict(_ISPEC_MIN), "vcpu-ratio": 4.0, "spindle-ratio": 32.0,
}


def changed(own: dict, changes: dict) -> dict:
    """``own`` with ``changes`` applied: a value ``default`` (RESET) removes the key (inherit again)."""
    result = dict(own)
    for key, value in changes.items():
        if value == RESET:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def changed_per_name(own: dict, changes: dict) -> dict:
    """Parameters per name (hypervisor, disk template) with ``changes`` applied as ``changed``
    does; a name left without parameters goes."""
    result = {name: dict(values) for name, values in own.items()}
    for name, name_changes in changes.items():
        result[name] = changed(result.get(name, {}), name_changes)
        if not result[name]:
            del result[name]
    return result


def normalised_beparams(beparams: dict) -> dict:
    """Ganeti's ``memory`` stands for both maxmem and minmem."""
    be = dict(beparams)
    if "memory" in be:
        memory = be.pop("memory")
        be.setdefault("maxmem", memory)
        be.setdefault("minmem", memory)
    return be


def beparams(data: Any, inst: dict) -> dict:
    """The backend parameters that apply to ``inst``: defaults, the cluster's, its own."""
    return {**config.DEFAULT_BEPARAMS, **normalised_beparams(data.cluster.get("beparams", {})),
            **normalised_beparams(inst.get("beparams", {}))}


def filled_hvparams(data: Any, inst: dict) -> dict:
    """``hvparams`` with the hypervisor's own defaults filled in too (as the node runs it); a
    hypervisor or value genet no longer knows leaves what is recorded."""
    from genet.hypervisor.base import HYPERVISORS, HypervisorError
    merged = hvparams(data, inst)
    try:
        return HYPERVISORS.cls(inst["hypervisor"]).fill_parameters(merged)
    except (LookupError, HypervisorError):
        return merged


def hvparams(data: Any, inst: dict) -> dict:
    """The hypervisor parameters set for ``inst`` (the hypervisor fills in its own defaults):
    the cluster's for its hypervisor, the cluster's for its OS (os_hvp), its own."""
    hv = inst["hypervisor"]
    os_name = (inst.get("os") or "").split("+", 1)[0]
    return {**data.cluster.get("hvparams", {}).get(hv, {}),
            **data.cluster.get("os_hvp", {}).get(os_name, {}).get(hv, {}), **inst.get("hvparams", {})}


def ndparams(data: Any, group: dict, own: dict) -> dict:
    """Node parameters as they apply: the defaults, the cluster's, the group's, then ``own``."""
    return {**DEFAULT_NDPARAMS, **data.cluster.get("ndparams", {}), **group.get("ndparams", {}), **own}


def ipolicy(data: Any, group: dict | None = None) -> dict:
    """The instance policy that applies (in a group): the defaults, the cluster's, the group's."""
    from genet.storage.units import enabled_templates
    return {**DEFAULT_IPOLICY, "disk-templates": enabled_templates(data.cluster), **data.cluster.get("ipolicy", {}),
            **(group or {}).get("ipolicy", {})}


def diskparams(data: Any, group: dict | None = None) -> dict:
    """Each disk template's parameters: the cluster's, then the group's."""
    cluster, own = data.cluster.get("diskparams", {}), (group or {}).get("diskparams", {})
    return {t: {**cluster.get(t, {}), **own.get(t, {})} for t in sorted(set(cluster) | set(own))}


def osparams(data: Any, inst: dict) -> dict:
    """The OS parameters that apply (what the OS scripts get): the cluster's for the OS and for its
    variant (public, then private ones), the instance's own."""
    name = inst.get("os") or ""
    cluster = {}
    for per_os in (data.cluster.get("osparams", {}), data.cluster.get("osparams_private", {})):
        cluster.update({**per_os.get(name.split("+", 1)[0], {}), **per_os.get(name, {})})
    return {**cluster, **inst.get("osparams", {})}


def nicparams(data: Any) -> dict:
    """The cluster's NIC defaults (mode, link, vlan) a new NIC without its own takes."""
    return {**DEFAULT_NICPARAMS, **data.cluster.get("nicparams", {})}


def filled(data: Any, inst):
    """``inst`` as it runs: with the backend, hypervisor and OS parameters that apply (what the
    node's hypervisor and OS scripts receive; never written back to the config)."""
    return inst.replace(beparams=beparams(data, inst), hvparams=hvparams(data, inst), osparams=osparams(data, inst))
