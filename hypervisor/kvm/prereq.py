"""What the node must offer for an instance's hvparams, checked before QEMU is started.

validation.py checks values on their own; here they meet this node: files and
directories that must exist, /dev/vhost-net, what the QEMU binary was built with
(SPICE, io_uring, migration capabilities), the user to run as, the CPUs to pin to. A
parameter that cannot work here is refused with its name and the reason, before any
tap or file is created. The answer (Resolved) carries what the command line and the
first QMP commands need: addresses of interfaces, the SPICE port, the passwords.
"""
from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genet import uidpool
from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import cpus, display, media, validation
from genet.hypervisor.kvm.capabilities import Capabilities
from genet.hypervisor.kvm.validation import ip_version, is_url

VHOST_NET = Path("/dev/vhost-net")
SPICE_PORTS = range(display.VNC_BASE_PORT + 100, display.VNC_BASE_PORT + 200)   # clear of VNC's :0-:99
VNC_X509_FILES = ("ca-cert.pem", "server-cert.pem", "server-key.pem")


@dataclass
class Resolved:
    vnc_host: str = ""                         # address, or directory of the unix socket
    spice: tuple[str, int] | None = None       # (address, port)
    vnc_password: str | None = None
    spice_password: str | None = None
    cpu_mask: cpus.Mask | None = None          # set when the vCPUs are to be pinned
    run_as: str = ""                           # the user QEMU becomes (-runas): security_model user or pool


def _refuse(name: str, value: Any, why: str) -> HypervisorError:
    return HypervisorError(f"hvparam {name!r}={value!r} cannot be used on this node: {why}")


def interface_addresses(name: str) -> dict[int, list[str]]:
    """The addresses of a network interface by IP version, or {} when there is no such interface."""
    r = subprocess.run(["ip", "-j", "addr", "show", "dev", name], capture_output=True, text=True)
    if r.returncode != 0:
        return {}
    found: dict[int, list[str]] = {4: [], 6: []}
    for link in json.loads(r.stdout or "[]"):
        for a in link.get("addr_info", []):
            found[4 if a.get("family") == "inet" else 6].append(a["local"])
    return found


def _address(name: str, value: str, version: int = 0) -> str:
    """An IP address as it is, an interface's first address (of ``version`` if given)."""
    if ip_version(value):
        return value
    found = interface_addresses(value)
    if not found:
        raise _refuse(name, value, "no IP address and no network interface of that name")
    for v in ([version] if version else [4, 6]):
        if found.get(v):
            return found[v][0]
    raise _refuse(name, value, f"interface {value} has no IPv{version or '4 or IPv6'} address")


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ip_version(host) == 6 else socket.AF_INET
    for port in SPICE_PORTS:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise HypervisorError(f"no free SPICE port on {host} ({SPICE_PORTS.start}-{SPICE_PORTS.stop - 1})")


def _first_line(name: str, path: str) -> str:
    try:
        with open(path) as f:
            return f.readline().rstrip("\n")
    except OSError as err:
        raise _refuse(name, path, f"cannot read it ({err.strerror})") from None


def _must_exist(name: str, path: str, directory: bool = False) -> None:
    ok = os.path.isdir(path) if directory else os.path.isfile(path) or Path(path).is_block_device()
    if not ok:
        raise _refuse(name, path, f"no such {'directory' if directory else 'file'}")


def check(inst: dict, params: dict[str, Any], caps: Capabilities) -> Resolved:
    """Refuse what cannot work here; resolve what the command line needs."""
    out = Resolved()
    if params["vhost_net"] and params["nic_type"] == "paravirtual" and not VHOST_NET.exists():
        raise _refuse("vhost_net", True, f"{VHOST_NET} is missing (kernel module vhost_net not loaded)")
    if params["kvm_flag"] == "enabled" and not caps.kvm_works:
        raise _refuse("kvm_flag", "enabled", f"KVM is not usable (/dev/kvm missing, not openable,"
                                              f" or refused by {caps.binary})")
    if params["disk_aio"] not in caps.aio_modes:
        raise _refuse("disk_aio", params["disk_aio"], f"QEMU {caps.version} here supports only"
                                                      f" {', '.join(sorted(caps.aio_modes))}")
    _check_files(params, caps)
    _check_security(params, caps)
    if params["security_model"] == "user":
        out.run_as = params["security_domain"]
    vnc = params["vnc_bind_address"]
    if vnc:
        if vnc.startswith("/"):
            _must_exist("vnc_bind_address", vnc, directory=True)
            out.vnc_host = vnc
        else:
            out.vnc_host = _address("vnc_bind_address", vnc, 4 if not ip_version(vnc) else 0)
        if params["vnc_password_file"]:
            out.vnc_password = _first_line("vnc_password_file", params["vnc_password_file"])
    if params["spice_bind"]:
        if "-spice" not in caps.options:
            raise _refuse("spice_bind", params["spice_bind"], f"{caps.binary} was built without SPICE")
        host = _address("spice_bind", params["spice_bind"], params["spice_ip_version"])
        out.spice = (host, int(inst.get("network_port") or _free_port(host)))
        if params["spice_password_file"]:
            out.spice_password = _first_line("spice_password_file", params["spice_password_file"])
    vcpus = int(inst.get("beparams", {}).get("vcpus", 1))
    cpus.check_topology(vcpus, params)
    if cpus.pins(params["cpu_mask"]):
        out.cpu_mask = cpus.check_mask(params["cpu_mask"], vcpus, cpus.host_cpus())
    unknown = [c for c in validation.migration_caps(params["migration_caps"]) if c not in caps.migration_caps]
    if unknown:
        raise _refuse("migration_caps", params["migration_caps"],
                      f"QEMU {caps.version} has no migration capability {', '.join(unknown)}"
                      f" (it has {', '.join(sorted(caps.migration_caps))})")
    return out


def _check_files(params: dict[str, Any], caps: Capabilities) -> None:
    for name, key in media.CDROMS:
        image = params[key]
        if image and is_url(image):
            scheme = image.split("://", 1)[0]
            if scheme not in caps.block_drivers:
                raise _refuse(key, image, f"QEMU {caps.version} here cannot open {scheme} URLs")
        elif image:
            _must_exist(key, image)
    for key in ("floppy_image_path",):
        if params[key]:
            _must_exist(key, params[key])
    if params["mem_path"]:
        _must_exist("mem_path", params["mem_path"], directory=True)
    if params["vnc_bind_address"] and params["vnc_tls"] and params["vnc_x509_path"]:
        for f in VNC_X509_FILES:
            if not os.path.isfile(os.path.join(params["vnc_x509_path"], f)):
                raise _refuse("vnc_x509_path", params["vnc_x509_path"], f"it has no {f}")
    if params["spice_bind"] and params["spice_use_tls"]:
        for path in (display.spice_cert(), display.spice_ca()):
            if not path.is_file():
                raise _refuse("spice_use_tls", True, f"the SPICE certificate {path} is missing")


def _check_security(params: dict[str, Any], caps: Capabilities) -> None:
    """security_model=pool takes its user when QEMU starts (KvmHypervisor, genet.uidpool)."""
    model = params["security_model"]
    if model == "pool" and not uidpool.node_pool():
        raise _refuse("security_model", "pool", "the cluster's user-id pool is empty (gnt-cluster modify --uid-pool)")
    if model == "user":
        try:
            pwd.getpwnam(params["security_domain"])
        except KeyError:
            raise _refuse("security_domain", params["security_domain"], "no such user") from None
    if (model != "none" or params["use_chroot"]) and not ({"-runas", "-run-with"} & caps.options):
        name, value = ("security_model", model) if model != "none" else ("use_chroot", True)
        raise _refuse(name, value, f"{caps.binary} has neither -runas nor -run-with")
