"""Tap devices for guest NICs: created before QEMU opens them, removed after it exits.

Taps are persistent (``ip tuntap add``) and named ``gnt-tNNNN``; the kernel is
the arbiter of names (a failed ``add`` of a taken name tries the next), so
concurrent starts and several genet nodes in one network namespace need no lock.
Bridged NICs join the bridge ``link`` (with ``vlan`` as the untagged VLAN ".N",
or tagged VLANs ":N:M" on a VLAN-filtering bridge); routed NICs get proxy ARP
and a host route for the NIC's IP via the tap (in table ``link`` when set).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
from pathlib import Path

from genet.hypervisor.base import HypervisorError

log = logging.getLogger("genet.hypervisor.kvm")
TAP_PREFIX = "gnt-t"
MAX_TAPS = 10000


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True)


def _must(*args: str) -> None:
    r = _run(*args)
    if r.returncode != 0:
        raise HypervisorError(f"{' '.join(args)}: {r.stderr.strip() or f'exit {r.returncode}'}")


def _link(name: str) -> dict | None:
    """The link called ``name`` in this network namespace, from netlink (not /sys, which shows the
    namespace that mounted it)."""
    if not name:
        return None
    r = _run("ip", "-j", "-d", "link", "show", "dev", name)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)[0]
    except (ValueError, IndexError):
        return None


def _is_bridge(name: str) -> bool:
    link = _link(name)
    return bool(link) and link.get("linkinfo", {}).get("info_kind") == "bridge"


def create_tap(nic: dict, instance: str, multi_queue: bool = False) -> str:
    """A new tap, attached as the NIC's mode asks; the name is returned. ``multi_queue``: QEMU
    opens it once per queue (virtio_net_queues), which the kernel allows only to such taps."""
    mode = nic.get("mode", "bridged")
    if mode not in ("bridged", "routed"):
        raise HypervisorError(f"instance {instance}: NIC mode {mode!r} is not supported (bridged, routed)")
    if mode == "bridged" and not _is_bridge(nic.get("link") or ""):
        raise HypervisorError(f"instance {instance}: bridge {nic.get('link')!r} does not exist on this node")
    if mode == "routed" and not nic.get("ip"):
        raise HypervisorError(f"instance {instance}: a routed NIC needs an IP address")
    for n in range(MAX_TAPS):
        name = f"{TAP_PREFIX}{n:04d}"
        if _link(name) is not None:
            continue
        r = _run("ip", "tuntap", "add", "name", name, "mode", "tap", *(["multi_queue"] if multi_queue else []))
        if r.returncode != 0:
            if "exists" in r.stderr or "busy" in r.stderr:
                continue
            raise HypervisorError(f"instance {instance}: cannot create tap {name}: {r.stderr.strip()}")
        try:
            _attach(name, nic)
        except HypervisorError as err:
            remove_tap(name)
            raise HypervisorError(f"instance {instance}: {err}") from None
        log.info("instance %s: tap %s (%s %s) for %s", instance, name, mode, nic.get("link"), nic.get("mac"))
        return name
    raise HypervisorError(f"instance {instance}: no free tap name ({TAP_PREFIX}0000-{MAX_TAPS - 1})")


def _attach(tap: str, nic: dict) -> None:
    if nic.get("mode", "bridged") == "bridged":
        _must("ip", "link", "set", tap, "master", nic["link"], "up")
        vlan = str(nic.get("vlan") or "")
        if vlan:
            _set_vlans(tap, vlan)
        return
    # proxy ARP answers for the guest's gateway only where the tap forwards (ip_route_input)
    Path(f"/proc/sys/net/ipv4/conf/{tap}/proxy_arp").write_text("1\n")
    Path(f"/proc/sys/net/ipv4/conf/{tap}/forwarding").write_text("1\n")
    _must("ip", "link", "set", tap, "up")
    addr = ipaddress.ip_address(nic["ip"])
    route = ["ip", "-6" if addr.version == 6 else "-4", "route", "replace",
             f"{addr}/{addr.max_prefixlen}", "dev", tap]
    if nic.get("link"):
        route += ["table", str(nic["link"])]
    _must(*route)


def _set_vlans(tap: str, vlan: str) -> None:
    """Ganeti's syntax: ".10" untagged (pvid) 10; ":20:30" tagged 20 and 30; "10" = ".10"."""
    untagged, _, tagged = (vlan if vlan[0] in ".:" else "." + vlan).lstrip(".").partition(":")
    if untagged:
        _must("bridge", "vlan", "add", "dev", tap, "vid", untagged, "pvid", "untagged")
    for vid in filter(None, tagged.split(":")):
        _must("bridge", "vlan", "add", "dev", tap, "vid", vid)


def remove_tap(tap: str | None) -> None:
    """Delete a tap (its routes go with it); a tap already gone is fine."""
    if not tap:
        return
    r = _run("ip", "link", "del", tap)
    if r.returncode != 0 and _link(tap) is not None:
        log.warning("cannot remove tap %s: %s", tap, r.stderr.strip())
