"""The kvm hvparams: one table of names, types, defaults, value sets and checks
(genet.hypervisor.params).

Names, value sets and defaults are Ganeti's hv_kvm ones (Ganeti 3.0), so hvparams
written for Ganeti mean the same here. Checks here need nothing of the node; what
depends on the node (files, /dev/vhost-net, what the QEMU binary can do) is checked
when the instance starts (prereq.py).
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any, Callable

from genet.hypervisor.kvm import cpus
from genet.hypervisor.params import Param

DISK_TYPES = ("paravirtual", "ide", "scsi-hd")
NIC_TYPES = ("paravirtual", "e1000", "rtl8139")
BOOT_ORDERS = ("floppy", "cdrom", "disk", "network")
DISK_CACHES = ("default", "none", "writethrough", "writeback")
DISK_AIOS = ("threads", "native", "io_uring")
DISK_DISCARDS = ("ignore", "unmap")
ACCELS = ("auto", "kvm", "tcg")
MOUSE_TYPES = ("", "mouse", "tablet")
# QEMU's -vga values for x86 and the graphics card each stands for
VGA_MODELS = {"std": "VGA", "cirrus": "cirrus-vga", "vmware": "vmware-svga", "qxl": "qxl-vga",
              "virtio": "virtio-vga"}
VGA_TYPES = ("", *VGA_MODELS, "none")
# QEMU's -audio models and their devices (pcspk is the machine's own speaker)
SOUND_DEVICES = {"ac97": ("AC97",), "adlib": ("adlib",), "cs4231a": ("cs4231a",), "es1370": ("ES1370",),
                 "gus": ("gus",), "hda": ("intel-hda", "hda-duplex"), "sb16": ("sb16",)}
SOUND_TYPES = ("", *SOUND_DEVICES, "pcspk")
SECURITY_MODELS = ("none", "user", "pool")
KVM_FLAGS = ("", "enabled", "disabled")
REBOOT_BEHAVIORS = ("reboot", "exit")
MIGRATION_MODES = ("live", "non-live")
SERIAL_SPEEDS = (75, 110, 300, 600, 1200, 1800, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600,
                 115200, 230400, 345600, 460800)
SPICE_IP_VERSIONS = (0, 4, 6)                  # 0: not specified
SPICE_LOSSLESS = ("", "auto_glz", "auto_lz", "glz", "lz", "off", "quic")
SPICE_LOSSY = ("", "always", "auto", "never")
SPICE_VIDEO = ("", "all", "filter", "off")
MAX_VIRTIO_NET_QUEUES = 32
URL_SCHEMES = ("http", "https", "ftp", "ftps")  # what QEMU's curl block driver opens
MIGRATION_CAPS_SEPARATOR = ":"


def migration_caps(value: str) -> list[str]:
    """The capability names of a migration_caps value."""
    return [c for c in value.split(MIGRATION_CAPS_SEPARATOR) if c]

_IFACE = re.compile(r"^[^/\s:]{1,15}$")          # a Linux interface name
_WORDS = re.compile(r"^[A-Za-z0-9_.+-]+$")


def _abs_path_or_empty(v: str) -> str | None:
    return None if v == "" or v.startswith("/") else "must be an absolute path (or empty)"


def is_url(v: str) -> bool:
    return v.split("://", 1)[0] in URL_SCHEMES and "://" in v


def _path_or_url(v: str) -> str | None:
    if v == "" or v.startswith("/") or is_url(v):
        return None
    return f"must be an absolute path or a URL ({', '.join(URL_SCHEMES)}), or empty"


def _positive(v: int) -> str | None:
    return None if v > 0 else "must be a positive number"


def _not_negative(v: int) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def ip_version(v: str) -> int | None:
    try:
        return ipaddress.ip_address(v).version
    except ValueError:
        return None


def _address_or_interface(v: str) -> str | None:
    if v == "" or ip_version(v) or _IFACE.match(v):
        return None
    return "must be an IP address or a network interface name (or empty)"


def _vnc_bind(v: str) -> str | None:
    if v.startswith("/"):
        return None
    complaint = _address_or_interface(v)
    return complaint and "must be an IP address, a network interface name or an absolute path (or empty)"


def _shlex(v: str) -> str | None:
    try:
        shlex.split(v)
    except ValueError as err:
        return f"cannot be split like a shell line ({err})"
    return None


def _words(separator: str | None, what: str) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        if not v:
            return None
        bad = [w for w in (v.split(separator) if separator else v.replace(",", " ").split()) if not _WORDS.match(w)]
        return f"has malformed {what}: {', '.join(map(repr, bad))}" if bad else None
    return check


def _keymap(v: str) -> str | None:
    return None if v == "" or _WORDS.match(v) else "must be a keymap name such as fr or en-gb (or empty)"


def _cpu_mask(v: str) -> str | None:
    try:
        cpus.parse_mask(v)
    except ValueError as err:
        return f"is not a CPU mask ({err})"
    return None


def _queues(v: int) -> str | None:
    return None if 1 <= v <= MAX_VIRTIO_NET_QUEUES else f"must be from 1 to {MAX_VIRTIO_NET_QUEUES}"


# --- checks against the other parameters (Ganeti's CheckParameterSyntax)

def _needs_spice(v: Any, p: dict) -> str | None:
    return "needs spice_bind to be set" if v and not p["spice_bind"] else None


def _spice_bind(v: str, p: dict) -> str | None:
    if not v:
        return None
    if p["vnc_bind_address"]:
        return "and vnc_bind_address are both set; only one of SPICE and VNC can be used"
    version = ip_version(v)
    if version and p["spice_ip_version"] and version != p["spice_ip_version"]:
        return f"is an IPv{version} address but spice_ip_version is {p['spice_ip_version']}"
    return None


def _security_domain(v: str, p: dict) -> str | None:
    if p["security_model"] == "user" and not v:
        return "must name the user to run QEMU as when security_model is user"
    if p["security_model"] != "user" and v:
        return f"cannot be set when security_model is {p['security_model']}"
    return None


def _boot_order(v: str, p: dict) -> str | None:
    image = {"cdrom": "cdrom_image_path", "floppy": "floppy_image_path"}.get(v)
    return f"needs {image} to be set" if image and not p[image] else None


def _disk_aio(v: str, p: dict) -> str | None:
    return "needs disk_cache=none" if v == "native" and p["disk_cache"] != "none" else None


def _vnc_x509_verify(v: bool, p: dict) -> str | None:
    return "needs vnc_x509_path to be set" if v and not p["vnc_x509_path"] else None


def _kvm_flag(v: str, p: dict) -> str | None:
    return "contradicts accel=tcg" if v == "enabled" and p["accel"] == "tcg" else None


def _in(choices: tuple) -> dict[str, Any]:
    return {"choices": choices}


PARAMS: dict[str, Param] = {
    # the QEMU binary and how the guest boots
    "kvm_path": Param(str, "/usr/bin/qemu-system-x86_64", "QEMU binary", _abs_path_or_empty),
    "kernel_path": Param(str, "", "kernel for direct boot; empty boots the BIOS", _abs_path_or_empty),
    "initrd_path": Param(str, "", "initrd for direct boot", _abs_path_or_empty),
    "kernel_args": Param(str, "ro", "kernel command line (after root=)"),
    "root_path": Param(str, "/dev/vda1", "root= for direct boot; empty leaves it out"),
    "boot_order": Param(str, "disk", "first boot device", **_in(BOOT_ORDERS), relation=_boot_order),
    "cdrom_image_path": Param(str, "", "CD-ROM image (path or URL)", _path_or_url),
    "cdrom2_image_path": Param(str, "", "second CD-ROM image (path or URL), not bootable", _path_or_url),
    "cdrom_disk_type": Param(str, "", "bus of the CD-ROMs; empty is disk_type", **_in(("",) + DISK_TYPES)),
    "floppy_image_path": Param(str, "", "floppy disk image", _abs_path_or_empty),
    "machine_version": Param(str, "", "QEMU machine type; empty is the binary's default"),
    "accel": Param(str, "auto", "kvm, tcg, or auto (see capabilities.choose_accel)", **_in(ACCELS)),
    "kvm_flag": Param(str, "", "enabled: KVM is required (accel=kvm)", **_in(KVM_FLAGS), relation=_kvm_flag),
    "acpi": Param(bool, True, "ACPI for the guest (needed for ACPI power-off)"),
    "use_localtime": Param(bool, False, "guest clock on the node's local time instead of UTC"),
    "reboot_behavior": Param(str, "reboot", "exit: a reboot in the guest powers it off", **_in(REBOOT_BEHAVIORS)),
    "user_shutdown": Param(bool, False, "a guest power-off is reported as USER_down, QEMU kept"),
    "use_guest_agent": Param(bool, False, "a QEMU guest agent channel on the unix socket qga.sock"),
    "kvm_extra": Param(str, "", "extra QEMU arguments, split like a shell line", _shlex),
    # CPU and memory
    "cpu_type": Param(str, "", "-cpu model; empty is QEMU's default"),
    "cpu_cores": Param(int, 0, "cores per socket; 0 lets QEMU choose", _not_negative),
    "cpu_threads": Param(int, 0, "threads per core; 0 lets QEMU choose", _not_negative),
    "cpu_sockets": Param(int, 0, "sockets; 0 lets QEMU choose", _not_negative),
    "cpu_mask": Param(str, "all", "host CPUs of the VM or of each vCPU", _cpu_mask),
    "mem_path": Param(str, "", "hugetlbfs mount backing the guest RAM", _abs_path_or_empty),
    # consoles and devices of the user
    "serial_console": Param(bool, True, "serial port on a unix socket (and console= on ttyS0)"),
    "serial_speed": Param(int, 38400, "baud rate given to console=ttyS0", **_in(SERIAL_SPEEDS)),
    "vnc_bind_address": Param(str, "", "VNC listens here when set", _vnc_bind),
    "vnc_tls": Param(bool, False, "VNC over TLS"),
    "vnc_x509_path": Param(str, "", "directory of the VNC TLS certificates", _abs_path_or_empty),
    "vnc_x509_verify": Param(bool, False, "VNC clients must show a certificate", relation=_vnc_x509_verify),
    "vnc_password_file": Param(str, "", "file whose first line is the VNC password", _abs_path_or_empty),
    "keymap": Param(str, "", "keyboard layout of the VNC console (-k)", _keymap),
    "spice_bind": Param(str, "", "SPICE listens here when set", _address_or_interface, relation=_spice_bind),
    "spice_ip_version": Param(int, 0, "IP version of spice_bind's interface; 0 any",
                              **_in(SPICE_IP_VERSIONS), relation=_needs_spice),
    "spice_password_file": Param(str, "", "file whose first line is the SPICE password", _abs_path_or_empty,
                                 relation=_needs_spice),
    "spice_image_compression": Param(str, "", "SPICE lossless image compression", **_in(SPICE_LOSSLESS),
                                     relation=_needs_spice),
    "spice_jpeg_wan_compression": Param(str, "", "SPICE jpeg compression on slow links", **_in(SPICE_LOSSY),
                                        relation=_needs_spice),
    "spice_zlib_glz_wan_compression": Param(str, "", "SPICE zlib-glz compression on slow links",
                                            **_in(SPICE_LOSSY), relation=_needs_spice),
    "spice_streaming_video": Param(str, "", "SPICE video stream detection", **_in(SPICE_VIDEO),
                                   relation=_needs_spice),
    "spice_playback_compression": Param(bool, True, "SPICE compresses audio"),
    "spice_use_tls": Param(bool, False, "SPICE over TLS only", relation=_needs_spice),
    "spice_tls_ciphers": Param(str, "HIGH:-DES:-3DES:-EXPORT:-DH", "OpenSSL cipher list of SPICE's TLS"),
    "spice_use_vdagent": Param(bool, True, "SPICE agent channel (virtio-serial)"),
    "vga": Param(str, "", "graphics card; empty: std with VNC, qxl with SPICE", **_in(VGA_TYPES)),
    "usb_mouse": Param(str, "", "USB pointer; empty: tablet with VNC", **_in(MOUSE_TYPES)),
    "usb_devices": Param(str, "", "-usbdevice names, separated by spaces or commas", _words(None, "USB devices")),
    "soundhw": Param(str, "", "sound card", **_in(SOUND_TYPES)),
    # disks and NICs
    "disk_type": Param(str, "paravirtual", "disk bus: virtio-blk, IDE or SCSI", **_in(DISK_TYPES)),
    "disk_cache": Param(str, "default", "host cache mode of disks", **_in(DISK_CACHES)),
    "disk_aio": Param(str, "threads", "how QEMU submits disk I/O", **_in(DISK_AIOS), relation=_disk_aio),
    "disk_discard": Param(str, "ignore", "whether the guest's discards reach the disk", **_in(DISK_DISCARDS)),
    "nic_type": Param(str, "paravirtual", "NIC model", **_in(NIC_TYPES)),
    "vhost_net": Param(bool, False, "virtio-net data path in the host kernel (/dev/vhost-net)"),
    "virtio_net_queues": Param(int, 1, "queues of each paravirtual NIC (multiqueue tap)", _queues),
    "vnet_hdr": Param(bool, True, "paravirtual NICs' taps with IFF_VNET_HDR (offloads)"),
    # migration
    "migration_mode": Param(str, "live", "how a migration moves the guest unless asked", **_in(MIGRATION_MODES)),
    "migration_downtime": Param(int, 30, "allowed downtime at the end of a migration (ms)", _positive),
    "migration_bandwidth": Param(int, 32, "migration bandwidth limit (MiB/s)", _positive),
    "migration_caps": Param(str, "", "QEMU migration capabilities to enable, ':'-separated",
                            _words(MIGRATION_CAPS_SEPARATOR, "capabilities")),
    # who QEMU runs as
    "security_model": Param(str, "none", "none, user (security_domain) or pool", **_in(SECURITY_MODELS)),
    "security_domain": Param(str, "", "user QEMU runs as under security_model=user", relation=_security_domain),
    "use_chroot": Param(bool, False, "QEMU chroots into an empty directory"),
}
