"""The QEMU command line the kvm backend builds for each hvparam (genet.hypervisor.kvm.cmdline)."""
from __future__ import annotations

import json

import pytest

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import KvmHypervisor, cmdline, devices
from genet.hypervisor.kvm.prereq import Resolved
from genet.hypervisor.kvm.runtime import Files

I440FX = "pc-i440fx-7.2"
Q35 = "pc-q35-7.2"


def argv(tmp_path, machine: str = I440FX, nics: int = 0, disks: int = 0, resolved: Resolved | None = None,
         run_with: bool = False, **hvparams) -> list[str]:
    inst = {"name": "inst1", "uuid": "0b6f4c36-6a8e-4f0c-9d0e-3d6b8f1e2a10", "hvparams": hvparams,
            "beparams": {"maxmem": 128, "vcpus": 4},
            "disks": [{"path": str(tmp_path / f"d{i}"), "uuid": f"u{i}"} for i in range(disks)],
            "nics": [{"mac": f"aa:00:00:00:00:0{i}", "link": "br0"} for i in range(nics)]}
    params = KvmHypervisor.fill_parameters(hvparams)
    layout = devices.plan(inst, params["disk_type"])
    for i, entry in enumerate(layout["nics"]):
        entry["tap"] = f"gnt-t000{i}"
    return cmdline.build(inst, params, machine, "tcg", layout, Files("inst1", tmp_path, tmp_path),
                         resolved=resolved, run_with=run_with)


def line(tmp_path, **kwargs) -> str:
    return " ".join(argv(tmp_path, **kwargs))


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_defaults_give_no_display_no_usb_no_extras_and_utc(tmp_path):
    """When no hvparam is set, the guest has no graphics, USB, sound or CD-ROM, a UTC clock,
    ACPI, and QEMU exits when the guest powers off or reboots normally."""
    args = argv(tmp_path)
    text = " ".join(args)
    for absent in ("-vnc", "-spice", "-usb", "-audiodev", "VGA", "pci-bridge", "-no-shutdown", "-no-reboot",
                   "-mem-path", "-runas", "-chroot", "cdrom", "floppy", "-k"):
        assert absent not in text, absent
    assert option(args, "-rtc") == "base=utc"
    assert option(args, "-machine") == I440FX
    assert option(args, "-smp") == "4"


@pytest.mark.parametrize("hvparams, flag, value", [
    ({"acpi": False}, "-machine", f"{I440FX},acpi=off"),
    ({"use_localtime": True}, "-rtc", "base=localtime"),
    ({"cpu_sockets": 1, "cpu_cores": 2, "cpu_threads": 2}, "-smp", "4,sockets=1,cores=2,threads=2"),
    ({"cpu_cores": 4}, "-smp", "4,cores=4"),
    ({"cpu_type": "qemu64"}, "-cpu", "qemu64"),
    ({"mem_path": "/dev/hugepages"}, "-mem-path", "/dev/hugepages"),
    ({"keymap": "en-gb", "vnc_bind_address": "127.0.0.1"}, "-k", "en-gb"),
    ({"security_model": "user", "security_domain": "nobody"}, "-runas", "nobody"),
    ({"soundhw": "pcspk"}, "-machine", f"{I440FX},pcspk-audiodev=snd0"),
])
def test_hvparam_sets_its_option(tmp_path, hvparams, flag, value):
    """When the hvparam is set, QEMU gets the option with that value."""
    assert option(argv(tmp_path, **hvparams), flag) == value


@pytest.mark.parametrize("hvparams, flag", [
    ({"user_shutdown": True}, "-no-shutdown"),
    ({"reboot_behavior": "exit"}, "-no-reboot"),
    ({"mem_path": "/dev/hugepages"}, "-mem-prealloc"),
])
def test_hvparam_sets_its_flag(tmp_path, hvparams, flag):
    assert flag in argv(tmp_path, **hvparams)


def test_use_chroot_confines_qemu_to_the_instance_chroot_directory(tmp_path):
    args = argv(tmp_path, use_chroot=True)
    assert option(args, "-chroot") == str(tmp_path / "inst1" / "chroot")


def test_security_and_chroot_use_run_with_on_a_qemu_without_runas(tmp_path):
    """When the QEMU has -run-with (QEMU 9) instead of -runas/-chroot, both go there."""
    args = argv(tmp_path, run_with=True, security_model="user", security_domain="nobody", use_chroot=True)
    assert option(args, "-run-with") == f"user=nobody,chroot={tmp_path / 'inst1' / 'chroot'}"
    assert "-runas" not in args and "-chroot" not in args


def test_kvm_extra_comes_last_split_like_a_shell_line(tmp_path):
    assert argv(tmp_path, kvm_extra="-global 'kvm-pit.lost_tick_policy=delay'")[-2:] == \
        ["-global", "kvm-pit.lost_tick_policy=delay"]


# --- VNC

def test_vnc_on_an_address_searches_a_free_display_and_adds_a_graphics_card_and_tablet(tmp_path):
    args = argv(tmp_path, vnc_bind_address="127.0.0.1")
    assert option(args, "-vnc") == "127.0.0.1:0,to=99"
    text = " ".join(args)
    assert f"-device VGA,id=video0,addr={hex(devices.VGA_SLOT)}" in text
    assert "-usb -device usb-tablet,id=usbmouse" in text


def test_vnc_on_ipv6_is_bracketed_and_on_a_directory_is_a_unix_socket(tmp_path):
    assert option(argv(tmp_path, vnc_bind_address="::1"), "-vnc") == "[::1]:0,to=99"
    assert option(argv(tmp_path, vnc_bind_address="/run/vnc"), "-vnc") == "unix:/run/vnc/inst1.vnc"


def test_vnc_on_an_interface_listens_on_the_address_prereq_resolved(tmp_path):
    args = argv(tmp_path, vnc_bind_address="eth0", resolved=Resolved(vnc_host="10.0.0.5"))
    assert option(args, "-vnc") == "10.0.0.5:0,to=99"


def test_vnc_tls_without_certificates_is_anonymous(tmp_path):
    args = argv(tmp_path, vnc_bind_address="127.0.0.1", vnc_tls=True)
    assert option(args, "-object") == "tls-creds-anon,id=vnctls0,endpoint=server"
    assert option(args, "-vnc") == "127.0.0.1:0,to=99,tls-creds=vnctls0"


@pytest.mark.parametrize("verify, peer", [(True, "yes"), (False, "no")])
def test_vnc_tls_with_x509_path_uses_its_certificates(tmp_path, verify, peer):
    args = argv(tmp_path, vnc_bind_address="127.0.0.1", vnc_tls=True, vnc_x509_path="/etc/vnc",
                vnc_x509_verify=verify)
    assert option(args, "-object") == f"tls-creds-x509,id=vnctls0,endpoint=server,dir=/etc/vnc,verify-peer={peer}"


def test_vnc_password_file_turns_password_checking_on_without_the_password_in_argv(tmp_path):
    args = argv(tmp_path, vnc_bind_address="127.0.0.1", vnc_password_file="/etc/vnc-pw",
                resolved=Resolved(vnc_host="127.0.0.1", vnc_password="s3cret"))
    assert option(args, "-vnc") == "127.0.0.1:0,to=99,password=on"
    assert "s3cret" not in " ".join(args)


# --- SPICE

def spice(tmp_path, **hvparams) -> list[str]:
    return argv(tmp_path, spice_bind="127.0.0.1", resolved=Resolved(spice=("127.0.0.1", 6001)), **hvparams)


def test_spice_listens_on_the_resolved_port_with_qxl_and_the_agent_channel(tmp_path):
    args = spice(tmp_path)
    assert option(args, "-spice") == "addr=127.0.0.1,port=6001,disable-ticketing=on"
    text = " ".join(args)
    assert f"-device qxl-vga,id=video0,addr={hex(devices.VGA_SLOT)}" in text
    assert f"-device pci-bridge,id=extras,chassis_nr=1,addr={hex(devices.EXTRAS_SLOT)}" in text
    assert "-device virtio-serial-pci,id=spiceserial,bus=extras,addr=0x4" in text
    assert "-chardev spicevmc,id=spicechannel0,name=vdagent" in text
    assert "name=com.redhat.spice.0" in text and "-vnc" not in text


def test_spice_options_follow_their_hvparams(tmp_path):
    args = spice(tmp_path, spice_ip_version=4, spice_password_file="/etc/spice-pw",
                 spice_image_compression="quic", spice_jpeg_wan_compression="never",
                 spice_zlib_glz_wan_compression="always", spice_streaming_video="filter",
                 spice_playback_compression=False, spice_use_vdagent=False)
    assert option(args, "-spice") == ("addr=127.0.0.1,port=6001,ipv4=on,image-compression=quic,"
                                      "jpeg-wan-compression=never,zlib-glz-wan-compression=always,"
                                      "streaming-video=filter,playback-compression=off,agent-mouse=off")
    assert "spicevmc" not in " ".join(args) and "pci-bridge" not in " ".join(args)


def test_spice_tls_takes_the_cluster_spice_certificate_on_the_tls_port(tmp_path, monkeypatch):
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    value = option(spice(tmp_path, spice_use_tls=True, spice_tls_ciphers="HIGH"), "-spice")
    pem, ca = tmp_path / "var/lib/genet/spice.pem", tmp_path / "var/lib/genet/spice-ca.pem"
    assert value == (f"addr=127.0.0.1,tls-port=6001,x509-cacert-file={ca},x509-key-file={pem},"
                     f"x509-cert-file={pem},tls-ciphers=HIGH,disable-ticketing=on")


# --- graphics, USB, sound

@pytest.mark.parametrize("vga, model", [("std", "VGA"), ("cirrus", "cirrus-vga"), ("vmware", "vmware-svga"),
                                        ("qxl", "qxl-vga"), ("virtio", "virtio-vga")])
def test_vga_picks_the_graphics_card(tmp_path, vga, model):
    assert f"-device {model},id=video0,addr=0x2" in line(tmp_path, vga=vga)


def test_vga_none_leaves_the_vnc_guest_without_a_card(tmp_path):
    assert "id=video0" not in line(tmp_path, vga="none", vnc_bind_address="127.0.0.1")


def test_usb_mouse_and_usb_devices_get_a_usb_controller(tmp_path):
    args = argv(tmp_path, usb_mouse="mouse", usb_devices="keyboard, braille")
    assert "-usb -device usb-mouse,id=usbmouse -usbdevice keyboard -usbdevice braille -" in " ".join(args)


@pytest.mark.parametrize("soundhw, devices_", [
    ("hda", ["intel-hda,id=sound0,bus=extras,addr=0x3", "hda-duplex,bus=sound0.0,audiodev=snd0"]),
    ("ac97", ["AC97,id=sound0,audiodev=snd0,bus=extras,addr=0x3"]),
    ("sb16", ["sb16,id=sound0,audiodev=snd0"]),
])
def test_soundhw_adds_its_card_playing_nowhere(tmp_path, soundhw, devices_):
    args = argv(tmp_path, soundhw=soundhw)
    assert option(args, "-audiodev") == "none,id=snd0"
    placed = [args[i + 1] for i, a in enumerate(args) if a == "-device"]
    assert all(d in placed for d in devices_)
    assert ("pci-bridge,id=extras,chassis_nr=1,addr=0x1c" in placed) == (soundhw != "sb16")


def test_soundhw_plays_to_spice_when_spice_is_on(tmp_path):
    assert option(spice(tmp_path, soundhw="hda"), "-audiodev") == "spice,id=snd0"


# --- CD-ROMs and floppy

def test_cdroms_follow_disk_type_by_default_and_boot_with_boot_order_cdrom(tmp_path):
    args = argv(tmp_path, cdrom_image_path="/isos/a.iso", cdrom2_image_path="/isos/b.iso", boot_order="cdrom")
    text = " ".join(args)
    assert '{"driver":"file","filename":"/isos/a.iso","node-name":"cdrom1-file","read-only":true}' in text
    assert '{"driver":"raw","file":"cdrom1-file","node-name":"cdrom1","read-only":true}' in text
    assert "-device virtio-blk-pci,id=cdrom1dev,drive=cdrom1,bus=extras,addr=0x1,bootindex=1" in text
    assert "virtio-blk-pci,id=cdrom2dev,drive=cdrom2,bus=extras,addr=0x2" in args
    assert "pci-bridge,id=extras" in text


@pytest.mark.parametrize("machine, bus1, bus2", [(I440FX, "bus=ide.1,unit=0", "bus=ide.1,unit=1"),
                                                 (Q35, "bus=ide.4,unit=0", "bus=ide.5,unit=0")])
def test_ide_cdroms_take_the_last_ide_positions(tmp_path, machine, bus1, bus2):
    text = line(tmp_path, machine=machine, cdrom_image_path="/a.iso", cdrom2_image_path="/b.iso",
                cdrom_disk_type="ide")
    assert f"-device ide-cd,id=cdrom1dev,drive=cdrom1,{bus1}" in text
    assert f"-device ide-cd,id=cdrom2dev,drive=cdrom2,{bus2}" in text


def test_ide_disks_and_ide_cdroms_cannot_share_positions(tmp_path):
    """When disk_type=ide and two IDE CD-ROMs on i440fx, a third IDE disk is refused."""
    line(tmp_path, disks=2, disk_type="ide", cdrom_image_path="/a.iso", cdrom2_image_path="/b.iso")
    with pytest.raises(HypervisorError, match="disk 2 and a CD-ROM both want IDE bus 1 unit 0"):
        line(tmp_path, disks=3, disk_type="ide", cdrom_image_path="/a.iso", cdrom2_image_path="/b.iso")


def test_scsi_cdrom_brings_the_scsi_controller(tmp_path):
    text = line(tmp_path, cdrom_image_path="/a.iso", cdrom_disk_type="scsi-hd")
    assert "-device virtio-scsi-pci,id=scsi0,addr=0x1b" in text
    assert "-device scsi-cd,id=cdrom1dev,drive=cdrom1,bus=scsi0.0,scsi-id=100,lun=0" in text


def test_cdrom_url_is_opened_by_the_curl_driver(tmp_path):
    text = line(tmp_path, cdrom_image_path="https://example.org/a.iso")
    assert '{"driver":"https","url":"https://example.org/a.iso","node-name":"cdrom1-file","read-only":true}' in text


def test_kernel_path_overrides_boot_order_cdrom(tmp_path):
    assert "bootindex" not in line(tmp_path, cdrom_image_path="/a.iso", boot_order="cdrom",
                                   kernel_path="/boot/vmlinuz")


@pytest.mark.parametrize("machine, controller", [(I440FX, False), (Q35, True)])
def test_floppy_is_drive_a_and_boots_with_boot_order_floppy(tmp_path, machine, controller):
    args = argv(tmp_path, machine=machine, floppy_image_path="/f.img", boot_order="floppy")
    text = " ".join(args)
    assert '{"driver":"file","filename":"/f.img","node-name":"floppy0-file"}' in text
    assert "-device floppy,id=floppydev0,unit=0,drive=floppy0" in text
    assert "-global isa-fdc.bootindexA=1" in text
    assert ("-device isa-fdc,id=fdc0" in text) == controller


# --- disks and NICs

def test_disk_aio_and_discard_go_to_the_block_nodes(tmp_path):
    args = argv(tmp_path, disks=1, disk_aio="native", disk_cache="none", disk_discard="unmap")
    nodes = [json.loads(args[i + 1]) for i, a in enumerate(args) if a == "-blockdev"]
    assert (nodes[0]["aio"], nodes[0]["cache"]["direct"], nodes[0]["discard"]) == ("native", True, "unmap")
    assert nodes[1]["discard"] == "unmap"


def test_disk_aio_defaults_to_threads_and_discard_to_ignore(tmp_path):
    args = argv(tmp_path, disks=1)
    proto = json.loads(args[args.index("-blockdev") + 1])
    assert (proto["aio"], proto["discard"]) == ("threads", "ignore")


def test_vhost_net_and_queues_shape_paravirtual_nics(tmp_path):
    args = argv(tmp_path, nics=1, vhost_net=True, virtio_net_queues=4)
    assert option(args, "-netdev") == "tap,id=nic0,ifname=gnt-t0000,script=no,downscript=no,vhost=on,queues=4"
    assert option(args, "-device") == "virtio-net-pci,id=nicdev0,netdev=nic0,mac=aa:00:00:00:00:00,addr=0x3," \
                                      "mq=on,vectors=10"


def test_vhost_net_and_queues_do_not_apply_to_other_nic_models(tmp_path):
    args = argv(tmp_path, nics=1, nic_type="e1000", vhost_net=True, virtio_net_queues=4)
    assert option(args, "-netdev") == "tap,id=nic0,ifname=gnt-t0000,script=no,downscript=no"
    assert "mq=on" not in option(args, "-device")


def test_vnet_hdr_off_reaches_paravirtual_taps_only(tmp_path):
    assert option(argv(tmp_path, nics=1, vnet_hdr=False), "-netdev").endswith(",vnet_hdr=off")
    assert "vnet_hdr" not in option(argv(tmp_path, nics=1, vnet_hdr=False, nic_type="rtl8139"), "-netdev")


def test_use_guest_agent_adds_its_channel_on_qga_sock(tmp_path):
    text = line(tmp_path, use_guest_agent=True)
    assert "-chardev socket,id=qga0,path=qga.sock,server=on,wait=off" in text
    assert "-device virtio-serial-pci,id=qgaserial,bus=extras,addr=0x5" in text
    assert "name=org.qemu.guest_agent.0" in text and "pci-bridge,id=extras" in text


def test_every_guest_gets_a_balloon_device_at_its_own_slot(tmp_path):
    """gnt-instance modify --runtime-memory balloons it; the fixed slot keeps migrations compatible."""
    args = argv(tmp_path)
    assert args[args.index("virtio-balloon-pci,id=balloon0,addr=0x1e") - 1] == "-device"
