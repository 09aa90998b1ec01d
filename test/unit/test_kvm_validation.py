"""The kvm hvparam table refuses bad values, and values that contradict each other, naming the
parameter (genet.hypervisor.kvm.validation through Hypervisor.check_parameters)."""
from __future__ import annotations

import pytest

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import KvmHypervisor
from genet.hypervisor.kvm.validation import PARAMS

check = KvmHypervisor.check_parameters


@pytest.mark.parametrize("hvparams, message", [
    ({"boot_order": "usb"}, r"'boot_order'='usb' must be one of floppy, cdrom, disk, network"),
    ({"disk_aio": "posix"}, r"'disk_aio'='posix' must be one of threads, native, io_uring"),
    ({"disk_discard": "trim"}, r"'disk_discard'='trim' must be one of ignore, unmap"),
    ({"usb_mouse": "trackball"}, r"'usb_mouse'='trackball' must be one of '', mouse, tablet"),
    ({"vga": "hercules"}, r"'vga'='hercules' must be one of"),
    ({"soundhw": "beeper"}, r"'soundhw'='beeper' must be one of"),
    ({"security_model": "selinux"}, r"'security_model'='selinux' must be one of none, user, pool"),
    ({"reboot_behavior": "halt"}, r"'reboot_behavior'='halt' must be one of reboot, exit"),
    ({"kvm_flag": "on"}, r"'kvm_flag'='on' must be one of '', enabled, disabled"),
    ({"migration_mode": "fast"}, r"'migration_mode'='fast' must be one of live, non-live"),
    ({"cdrom_disk_type": "floppy"}, r"'cdrom_disk_type'='floppy' must be one of"),
    ({"serial_speed": 12345}, r"'serial_speed'=12345 must be one of 75, 110"),
    ({"spice_ip_version": 5}, r"'spice_ip_version'=5 must be one of 0, 4, 6"),
    ({"spice_image_compression": "png"}, r"'spice_image_compression'='png' must be one of"),
    ({"cpu_cores": -1}, r"'cpu_cores'=-1 must be 0 or more"),
    ({"cpu_threads": "two"}, r"'cpu_threads': expected int"),
    ({"virtio_net_queues": 0}, r"'virtio_net_queues'=0 must be from 1 to 32"),
    ({"virtio_net_queues": 33}, r"'virtio_net_queues'=33 must be from 1 to 32"),
    ({"cpu_mask": "0-x"}, r"'cpu_mask'='0-x' is not a CPU mask"),
    ({"cpu_mask": "3-1"}, r"'cpu_mask'='3-1' is not a CPU mask \(range '3-1' runs backwards\)"),
    ({"cpu_mask": ""}, r"'cpu_mask'='' is not a CPU mask"),
    ({"cdrom_image_path": "a.iso"}, r"'cdrom_image_path'='a.iso' must be an absolute path or a URL"),
    ({"cdrom2_image_path": "gopher://x/a.iso"}, r"'cdrom2_image_path'.*must be an absolute path or a URL"),
    ({"floppy_image_path": "f.img"}, r"'floppy_image_path'='f.img' must be an absolute path"),
    ({"mem_path": "hugepages"}, r"'mem_path'='hugepages' must be an absolute path"),
    ({"vnc_x509_path": "certs"}, r"'vnc_x509_path'='certs' must be an absolute path"),
    ({"vnc_password_file": "pw"}, r"'vnc_password_file'='pw' must be an absolute path"),
    ({"vnc_bind_address": "not an address"}, r"'vnc_bind_address'.*IP address, a network interface name"),
    ({"spice_bind": "/run/spice"}, r"'spice_bind'='/run/spice' must be an IP address or a network interface"),
    ({"keymap": "fr de"}, r"'keymap'='fr de' must be a keymap name"),
    ({"usb_devices": "keyboard host:1234;rm"}, r"'usb_devices'.*malformed USB devices: 'host:1234;rm'"),
    ({"migration_caps": "xbzrle::auto converge"}, r"'migration_caps'.*malformed capabilities"),
    ({"vnc_tls": "maybe"}, r"'vnc_tls': expected bool"),
])
def test_bad_value_is_refused_naming_the_parameter(hvparams, message):
    with pytest.raises(HypervisorError, match=message):
        check(hvparams)


@pytest.mark.parametrize("hvparams, message", [
    ({"security_model": "user"}, r"'security_domain'='' must name the user to run QEMU as"),
    ({"security_domain": "nobody"}, r"'security_domain'='nobody' cannot be set when security_model is none"),
    ({"security_model": "pool", "security_domain": "nobody"}, r"cannot be set when security_model is pool"),
    ({"vnc_x509_verify": True}, r"'vnc_x509_verify'=True needs vnc_x509_path"),
    ({"boot_order": "cdrom"}, r"'boot_order'='cdrom' needs cdrom_image_path"),
    ({"boot_order": "floppy"}, r"'boot_order'='floppy' needs floppy_image_path"),
    ({"disk_aio": "native"}, r"'disk_aio'='native' needs disk_cache=none"),
    ({"kvm_flag": "enabled", "accel": "tcg"}, r"'kvm_flag'='enabled' contradicts accel=tcg"),
    ({"spice_bind": "127.0.0.1", "vnc_bind_address": "127.0.0.1"}, r"'spice_bind'.*only one of SPICE and VNC"),
    ({"spice_bind": "::1", "spice_ip_version": 4}, r"'spice_bind'='::1' is an IPv6 address but spice_ip_version"),
    ({"spice_use_tls": True}, r"'spice_use_tls'=True needs spice_bind"),
    ({"spice_password_file": "/etc/pw"}, r"'spice_password_file'.*needs spice_bind"),
    ({"spice_streaming_video": "all"}, r"'spice_streaming_video'.*needs spice_bind"),
])
def test_contradicting_values_are_refused_naming_the_parameter(hvparams, message):
    with pytest.raises(HypervisorError, match=message):
        check(hvparams)


@pytest.mark.parametrize("hvparams", [
    {"security_model": "user", "security_domain": "nobody"},
    {"vnc_tls": "true", "vnc_x509_path": "/etc/vnc", "vnc_x509_verify": "yes", "vnc_bind_address": "eth0"},
    {"vnc_bind_address": "/run/vnc"},
    {"boot_order": "cdrom", "cdrom_image_path": "https://example.org/a.iso"},
    {"disk_aio": "native", "disk_cache": "none"},
    {"spice_bind": "br0", "spice_ip_version": "6", "spice_use_tls": "true"},
    {"cpu_mask": "0-1,3:all:2", "cpu_cores": "2", "serial_speed": "115200"},
    {"migration_caps": "xbzrle:auto-converge", "usb_devices": "tablet,keyboard"},
])
def test_good_values_in_their_cli_string_form_are_accepted(hvparams):
    check(hvparams)


def test_every_parameter_default_passes_its_own_checks():
    """The table's defaults are valid values (the man page states them as such)."""
    check({name: p.default for name, p in PARAMS.items()})
    assert PARAMS["vhost_net"].default is False and PARAMS["disk_aio"].default == "threads"
