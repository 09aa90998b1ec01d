"""What the user sees and touches: VNC or SPICE, the graphics card, keymap, USB input and sound.

Pure argv builders. Addresses are resolved beforehand (prereq.Resolved: an interface
name becomes its address, SPICE gets a free port); passwords are not on the command
line: QEMU starts with password checking on and the backend sets the password over QMP
before the guest runs. PCI devices sit at fixed addresses (devices.py), so a
migration target lays them out as the source did.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from genet import paths
from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import devices
from genet.hypervisor.kvm.validation import SOUND_DEVICES, VGA_MODELS, ip_version

VNC_BASE_PORT = 5900
PCI_SOUND = ("AC97", "ES1370", "intel-hda")
VNC_TLS_ID = "vnctls0"


def spice_cert() -> Path:
    """SPICE's TLS certificate and key (PEM), as Ganeti's spice.pem."""
    return paths.data_dir() / "spice.pem"


def spice_ca() -> Path:
    return paths.data_dir() / "spice-ca.pem"


def _host(addr: str) -> str:
    return f"[{addr}]" if ip_version(addr) == 6 else addr


def vnc_option(params: dict[str, Any], inst: dict, host: str) -> str:
    """``-vnc`` value: a unix socket DIR/NAME.vnc when vnc_bind_address is a directory (Ganeti),
    else the instance's network_port when the master allocated one, else the first free display
    (QEMU searches up to :99; the port is read back via query-vnc); TLS and password options follow."""
    if host.startswith("/"):
        value = f"unix:{host}/{inst['name']}.vnc"
    else:
        port = inst.get("network_port")
        if port:
            if int(port) < VNC_BASE_PORT:
                raise HypervisorError(f"instance {inst['name']}: VNC port {port} is below {VNC_BASE_PORT}")
            value = f"{_host(host)}:{int(port) - VNC_BASE_PORT}"
        else:
            value = f"{_host(host)}:0,to=99"
    if params["vnc_tls"]:
        value += f",tls-creds={VNC_TLS_ID}"
    if params["vnc_password_file"]:
        value += ",password=on"
    return value


def vnc_tls_object(params: dict[str, Any]) -> list[str]:
    """The TLS credentials VNC uses: anonymous, or the x509 certificates in vnc_x509_path
    (ca-cert.pem, server-cert.pem, server-key.pem), checking clients' with vnc_x509_verify."""
    if not params["vnc_tls"]:
        return []
    if not params["vnc_x509_path"]:
        return ["-object", f"tls-creds-anon,id={VNC_TLS_ID},endpoint=server"]
    verify = "yes" if params["vnc_x509_verify"] else "no"
    return ["-object", f"tls-creds-x509,id={VNC_TLS_ID},endpoint=server,"
                       f"dir={params['vnc_x509_path']},verify-peer={verify}"]


def spice_option(params: dict[str, Any], host: str, port: int) -> str:
    opts = [f"addr={host}"]
    if params["spice_use_tls"]:
        opts += [f"tls-port={port}", f"x509-cacert-file={spice_ca()}", f"x509-key-file={spice_cert()}",
                 f"x509-cert-file={spice_cert()}"]
        if params["spice_tls_ciphers"]:
            opts.append(f"tls-ciphers={params['spice_tls_ciphers']}")
    else:
        opts.append(f"port={port}")
    if not params["spice_password_file"]:
        opts.append("disable-ticketing=on")
    if params["spice_ip_version"]:
        opts.append(f"ipv{params['spice_ip_version']}=on")
    for key, opt in (("spice_image_compression", "image-compression"),
                     ("spice_jpeg_wan_compression", "jpeg-wan-compression"),
                     ("spice_zlib_glz_wan_compression", "zlib-glz-wan-compression"),
                     ("spice_streaming_video", "streaming-video")):
        if params[key]:
            opts.append(f"{opt}={params[key]}")
    if not params["spice_playback_compression"]:
        opts.append("playback-compression=off")
    if not params["spice_use_vdagent"]:
        opts.append("agent-mouse=off")
    return ",".join(opts)


def spice_agent() -> list[str]:
    """The SPICE agent's channel: a virtio-serial port named as spice-vdagent expects."""
    serial = {"driver": "virtio-serial-pci", "id": "spiceserial", "bus": devices.EXTRAS_BUS,
              "addr": hex(devices.EXTRAS_ADDRS["spice-agent"])}
    return ["-device", devices.keyval(serial, "driver"),
            "-chardev", "spicevmc,id=spicechannel0,name=vdagent",
            "-device", "virtserialport,bus=spiceserial.0,chardev=spicechannel0,name=com.redhat.spice.0"]


def vga_model(params: dict[str, Any]) -> str | None:
    """The graphics card's QEMU model: vga if set, else std with VNC and qxl with SPICE (Ganeti)."""
    vga = params["vga"] or ("qxl" if params["spice_bind"] else "std" if params["vnc_bind_address"] else "none")
    return VGA_MODELS.get(vga)


def usb_args(params: dict[str, Any]) -> list[str]:
    """USB controller and devices: usb_mouse (tablet by default with VNC, as Ganeti) and usb_devices."""
    mouse = params["usb_mouse"] or ("tablet" if params["vnc_bind_address"] else "")
    others = params["usb_devices"].replace(",", " ").split()
    if not mouse and not others:
        return []
    out = ["-usb"]
    if mouse:
        out += ["-device", f"usb-{mouse},id=usbmouse"]
    for dev in others:
        out += ["-usbdevice", dev]
    return out


def sound_args(params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(argv, -machine properties) of soundhw; the sound goes to SPICE when SPICE is on, else nowhere."""
    model = params["soundhw"]
    if not model:
        return [], []
    driver = "spice" if params["spice_bind"] else "none"
    out = ["-audiodev", f"{driver},id=snd0"]
    if model == "pcspk":
        return out, ["pcspk-audiodev=snd0"]
    first, *rest = SOUND_DEVICES[model]
    dev = {"driver": first, "id": "sound0", "audiodev": "snd0"}
    if first in PCI_SOUND:
        dev.update(bus=devices.EXTRAS_BUS, addr=hex(devices.EXTRAS_ADDRS["sound"]))
    if rest:                              # intel-hda: the codec carries the audio
        del dev["audiodev"]
        out += ["-device", devices.keyval(dev, "driver"), "-device", f"{rest[0]},bus=sound0.0,audiodev=snd0"]
    else:
        out += ["-device", devices.keyval(dev, "driver")]
    return out, []


def needs_extras_bridge(params: dict[str, Any]) -> bool:
    pci_sound = params["soundhw"] and SOUND_DEVICES.get(params["soundhw"], ("",))[0] in PCI_SOUND
    return bool(pci_sound or (params["spice_bind"] and params["spice_use_vdagent"]))


def args(params: dict[str, Any], inst: dict, vnc_host: str, spice: tuple[str, int] | None) -> list[str]:
    """Graphics card, remote display, keymap, USB and sound (machine properties aside)."""
    out: list[str] = []
    model = vga_model(params)
    if model:
        out += ["-device", f"{model},id=video0,addr={hex(devices.VGA_SLOT)}"]
    if vnc_host:
        out += vnc_tls_object(params) + ["-vnc", vnc_option(params, inst, vnc_host)]
    elif spice is not None:
        out += ["-spice", spice_option(params, *spice)]
        if params["spice_use_vdagent"]:
            out += spice_agent()
    if params["keymap"]:
        out += ["-k", params["keymap"]]
    out += usb_args(params)
    out += sound_args(params)[0]
    return out
