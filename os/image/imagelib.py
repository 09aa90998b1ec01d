"""Shared code of genet's ``image`` OS definition (stdlib only: it runs on any node's python3).

The scripts import this module from their own directory.  Everything they print goes to
stderr (the OS log): an export script's stdout is the dump stream.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path

IMAGE_SUFFIXES = ("", ".qcow2", ".raw", ".img")
TRUE = ("1", "true", "yes", "on", "y")
FALSE = ("", "0", "false", "no", "off", "n")
KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")
SEED_LABEL = "cidata"


class Failure(Exception):
    """A reason to stop; the script prints it and exits 1."""


def log(message: str) -> None:
    print(f"image: {message}", file=sys.stderr, flush=True)


def getenv(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def main(func) -> None:
    """Run a script's body: usage on -h/--help, a Failure becomes one error line and exit 1."""
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(f"usage: {Path(sys.argv[0]).name} — genet image OS script (Ganeti OS API 20);"
              " see README in the OS directory", file=sys.stderr)
        sys.exit(0)
    try:
        func(sys.argv[1:])
    except Failure as err:
        print(f"image: error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)


def boolean(name: str, default: bool = False) -> bool:
    """The OS parameter ``name`` (its OSP_ variable) read as a boolean."""
    value = getenv("OSP_" + name.upper()).strip().lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise Failure(f"OS parameter {name}={value!r} is not a boolean (use true or false)")


def ssh_keys() -> list[str]:
    """The keys of OS parameter ``ssh_keys``: separated by newlines or ';'."""
    keys = [k.strip() for k in re.split(r"[\n;]", getenv("OSP_SSH_KEYS")) if k.strip()]
    for key in keys:
        if not key.startswith(KEY_PREFIXES):
            raise Failure(f"OS parameter ssh_keys: {key[:40]!r} does not look like an SSH public key")
    return keys


# --- images ----------------------------------------------------------------------------------


def image_store() -> Path:
    store = getenv("GENET_IMAGE_STORE")
    if store:
        return Path(store)
    return Path(getenv("GENET_ROOT", "/")) / "srv/genet/images"


def resolve_image(value: str | None = None) -> Path:
    """The image file named by OS parameter ``image``: an absolute path, or a name (with or
    without .qcow2/.raw/.img) in the image store."""
    value = (getenv("OSP_IMAGE") if value is None else value).strip()
    if not value:
        raise Failure("OS parameter 'image' is not set (a file path, or a name in the image store)")
    store = image_store()
    if value.startswith("/"):
        candidates = [Path(value)]
    else:
        if ".." in Path(value).parts:
            raise Failure(f"image {value!r}: a name in the image store may not contain '..'")
        candidates = [store / (value + suffix) for suffix in IMAGE_SUFFIXES]
    for path in candidates:
        if path.is_file() or path.is_block_device():
            return path
    where = "" if value.startswith("/") else f" in the image store {store}"
    raise Failure(f"image {value!r} not found{where}")


def qemu_img(*args: str, what: str) -> str:
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise Failure(f"{what} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def image_info(path: Path, fmt: str | None = None, share: bool = True) -> dict:
    """``qemu-img info`` of ``path`` (format probed unless ``fmt`` is given)."""
    args = ["info", "--output=json"] + (["-U"] if share else []) + (["-f", fmt] if fmt else []) + [str(path)]
    try:
        return json.loads(qemu_img(*args, what=f"reading {path}"))
    except json.JSONDecodeError as err:
        raise Failure(f"qemu-img info {path}: unreadable answer ({err})") from None


def disk(index: int) -> tuple[Path, str]:
    """Path and format of instance disk ``index``."""
    path = getenv(f"DISK_{index}_PATH")
    if not path:
        raise Failure(f"the instance has no disk {index} (DISK_COUNT={getenv('DISK_COUNT', '0')})")
    return Path(path), getenv(f"DISK_{index}_FORMAT", "raw") or "raw"


def write_image(image: Path, target: Path, target_fmt: str, what: str) -> None:
    """Copy ``image`` (any format qemu-img reads) onto the existing disk ``target``."""
    info = image_info(image)
    src_fmt = info.get("format", "raw")
    src_size = int(info.get("virtual-size", 0))
    if info.get("backing-filename"):
        log(f"{what}: {image} has a backing file ({info['backing-filename']}); it is read too")
    tinfo = image_info(target, target_fmt, share=False)
    dst_size = int(tinfo.get("virtual-size", 0))
    if src_size > dst_size:
        raise Failure(f"{what}: image {image} ({src_size} bytes) does not fit on disk {target}"
                      f" ({dst_size} bytes)")
    log(f"{what}: writing {image} ({src_fmt}, {src_size} bytes) onto {target} ({target_fmt},"
        f" {dst_size} bytes)")
    start = time.monotonic()
    qemu_img("convert", "-n", "-f", src_fmt, "-O", target_fmt, str(image), str(target),
             what=f"{what}: qemu-img convert")
    log(f"{what}: done in {time.monotonic() - start:.2f} s")


# --- cloud-init NoCloud seed -----------------------------------------------------------------


def _yaml_str(value: str) -> str:
    return json.dumps(value)      # a JSON string is a valid YAML scalar


def seed_files(hostname: str | None = None) -> dict[str, bytes]:
    """meta-data, user-data and (with a NIC) network-config for cloud-init's NoCloud source."""
    name = getenv("INSTANCE_NAME")
    hostname = hostname or getenv("OSP_HOSTNAME") or name
    instance_id = getenv("INSTANCE_UUID") or f"iid-{name}"
    meta = f"instance-id: {_yaml_str(instance_id)}\nlocal-hostname: {_yaml_str(hostname)}\n"
    user = ["#cloud-config", f"hostname: {_yaml_str(hostname.split('.')[0])}"]
    if "." in hostname:
        user.append(f"fqdn: {_yaml_str(hostname)}")
    keys = ssh_keys()
    if keys:
        user.append("ssh_authorized_keys:")
        user.extend(f"  - {_yaml_str(k)}" for k in keys)
    files = {"meta-data": meta.encode(), "user-data": ("\n".join(user) + "\n").encode()}
    mac = getenv("NIC_0_MAC")
    if int(getenv("NIC_COUNT", "0") or 0) > 0 and mac:
        net = ["version: 2", "ethernets:", "  nic0:", "    match:", f"      macaddress: {_yaml_str(mac)}",
               "    set-name: eth0"]
        ip = getenv("NIC_0_IP")
        if ip:
            if "/" not in ip:
                subnet = getenv("NIC_0_NETWORK_SUBNET")
                prefix = subnet.split("/")[1] if "/" in subnet else ("64" if ":" in ip else "24")
                if not subnet:
                    log(f"network-config: no subnet known for {ip}, using /{prefix}")
                ip = f"{ip}/{prefix}"
            net.append(f"    addresses: [{_yaml_str(ip)}]")
            gateway = getenv("NIC_0_NETWORK_GATEWAY")
            if gateway:
                net += ["    routes:", "      - to: default", f"        via: {_yaml_str(gateway)}"]
        else:
            net.append("    dhcp4: true")
        files["network-config"] = ("\n".join(net) + "\n").encode()
    return files


def build_seed(files: dict[str, bytes], directory: Path, builder: str = "") -> Path:
    """A filesystem image labelled ``cidata`` holding ``files``.

    ``builder``: ``vfat`` (mkfs.vfat + mcopy, dosfstools/mtools), ``iso`` (genisoimage,
    mkisofs or xorriso), ``builtin`` (a FAT12 image written here, no tools needed), or ''
    for the first of these that is available.
    """
    builders = [builder] if builder else ["vfat", "iso", "builtin"]
    for name in builders:
        if name == "vfat" and shutil.which("mkfs.vfat") and shutil.which("mcopy"):
            return _seed_vfat(files, directory)
        if name == "iso":
            tool = next((t for t in ("genisoimage", "mkisofs", "xorriso") if shutil.which(t)), None)
            if tool:
                return _seed_iso(tool, files, directory)
        if name == "builtin":
            path = directory / "seed.img"
            path.write_bytes(fat12_image(files, SEED_LABEL))
            log(f"cloud-init: seed written as FAT12 (built in) to {path}")
            return path
        if builder:
            raise Failure(f"cloud-init seed builder {builder!r} is not available on this node")
    raise Failure("no way to build a cloud-init seed")   # not reached: builtin always works


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise Failure(f"{what} failed: {(proc.stderr or proc.stdout).strip()}")


def _seed_vfat(files: dict[str, bytes], directory: Path) -> Path:
    path = directory / "seed.img"
    kib = max(1024, 64 + sum(math.ceil(len(d) / 1024) + 1 for d in files.values()))
    _run(["mkfs.vfat", "-n", SEED_LABEL, "-C", str(path), str(kib)], "mkfs.vfat")
    for name, data in files.items():
        src = directory / name
        src.write_bytes(data)
        _run(["mcopy", "-o", "-i", str(path), str(src), f"::{name}"], f"mcopy {name}")
    log(f"cloud-init: seed written as vfat (mkfs.vfat + mcopy) to {path}")
    return path


def _seed_iso(tool: str, files: dict[str, bytes], directory: Path) -> Path:
    path = directory / "seed.iso"
    content = directory / "content"
    content.mkdir()
    for name, data in files.items():
        (content / name).write_bytes(data)
    if tool == "xorriso":
        argv = ["xorriso", "-as", "mkisofs"]
    else:
        argv = [tool]
    _run(argv + ["-quiet", "-output", str(path), "-volid", SEED_LABEL, "-joliet", "-rock", str(content)], tool)
    log(f"cloud-init: seed written as ISO 9660 ({tool}) to {path}")
    return path


# --- a small FAT12 writer (VFAT long names), for nodes without dosfstools --------------------


def _fat_datetime(when: datetime.datetime) -> tuple[int, int]:
    date = ((max(when.year, 1980) - 1980) << 9) | (when.month << 5) | when.day
    tod = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    return date, tod


def _short_name(name: str, used: set[bytes]) -> bytes:
    """An 8.3 alias (``BASE~N.EXT``) for a long name, unique among ``used``."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    def clean(text: str) -> str:
        return re.sub(r"[^A-Z0-9!#$%&'()@^_`{}~-]", "", text.upper())
    base, ext = clean(stem), clean(ext)[:3]
    for n in range(1, 1000000):
        tail = f"~{n}"
        alias = (base[:8 - len(tail)] + tail).ljust(8) + ext.ljust(3)
        encoded = alias.encode("ascii")
        if encoded not in used:
            used.add(encoded)
            return encoded
    raise Failure(f"no 8.3 alias left for {name!r}")


def _lfn_checksum(short: bytes) -> int:
    total = 0
    for byte in short:
        total = ((((total & 1) << 7) | (total >> 1)) + byte) & 0xFF
    return total


def _lfn_entries(name: str, checksum: int) -> list[bytes]:
    units = list(struct.unpack(f"<{len(name.encode('utf-16-le')) // 2}H", name.encode("utf-16-le")))
    if len(units) > 255:
        raise Failure(f"file name too long for FAT: {name!r}")
    if len(units) % 13:
        units.append(0)
        units += [0xFFFF] * (-len(units) % 13)
    parts = [units[i:i + 13] for i in range(0, len(units), 13)]
    entries = []
    for seq, part in enumerate(parts, 1):
        order = seq | (0x40 if seq == len(parts) else 0)
        entries.append(struct.pack("<B5HBBB6HH2H", order, *part[:5], 0x0F, 0, checksum, *part[5:11], 0,
                                   *part[11:13]))
    return entries[::-1]          # the last part comes first on disk


def fat12_image(files: dict[str, bytes], label: str, when: datetime.datetime | None = None,
                min_sectors: int = 2048) -> bytes:
    """A FAT12 filesystem image (at least 1 MiB) holding ``files`` in its root directory."""
    sector = 512
    when = when or datetime.datetime.now()
    date, tod = _fat_datetime(when)
    names = list(files)
    entries_needed = 1 + sum(1 + math.ceil(len(n.encode("utf-16-le")) // 2 / 13) for n in names)
    root_entries = max(224, -(-entries_needed // 16) * 16)
    root_sectors = root_entries * 32 // sector
    for spc in (1, 2, 4, 8, 16, 32, 64):
        cluster = spc * sector
        needed = sum(math.ceil(len(d) / cluster) for d in files.values())
        fat_sectors = math.ceil(math.ceil(4086 * 3 / 2) / sector)      # enough for any FAT12
        clusters = max(needed, (min_sectors - 1 - 2 * fat_sectors - root_sectors) // spc)
        if clusters <= 4084:
            fat_sectors = math.ceil(math.ceil((clusters + 2) * 3 / 2) / sector)
            break
    else:
        raise Failure("cloud-init seed too large for FAT12")
    first_data = 1 + 2 * fat_sectors + root_sectors
    total = first_data + clusters * spc
    image = bytearray(total * sector)
    label11 = label.encode("ascii")[:11].ljust(11)
    volume_id = uuidlib.uuid4().int & 0xFFFFFFFF
    boot = struct.pack("<3s8sHBHBHHBHHHII", b"\xeb\x3c\x90", b"GENET   ", sector, spc, 1, 2, root_entries,
                       total if total < 0x10000 else 0, 0xF8, fat_sectors, 32, 64, 0,
                       total if total >= 0x10000 else 0)
    boot += struct.pack("<BBBI11s8s", 0x80, 0, 0x29, volume_id, label11, b"FAT12   ")
    image[0:len(boot)] = boot
    image[len(boot):len(boot) + 2] = b"\xeb\xfe"           # boot code: spin (not bootable)
    image[510:512] = b"\x55\xaa"

    fat = bytearray(fat_sectors * sector)

    def set_entry(n: int, value: int) -> None:
        off = n * 3 // 2
        if n % 2 == 0:
            fat[off] = value & 0xFF
            fat[off + 1] = (fat[off + 1] & 0xF0) | ((value >> 8) & 0x0F)
        else:
            fat[off] = (fat[off] & 0x0F) | ((value << 4) & 0xF0)
            fat[off + 1] = (value >> 4) & 0xFF

    set_entry(0, 0xFF8)
    set_entry(1, 0xFFF)
    root = bytearray()
    root += struct.pack("<11sBBBHHHHHHHI", label11, 0x08, 0, 0, 0, 0, 0, 0, tod, date, 0, 0)
    used: set[bytes] = set()
    next_cluster = 2
    for name in names:
        data = files[name]
        count = math.ceil(len(data) / (spc * sector))
        first = next_cluster if count else 0
        for i in range(count):
            n = next_cluster + i
            set_entry(n, n + 1 if i < count - 1 else 0xFFF)
            offset = (first_data + (n - 2) * spc) * sector
            chunk = data[i * spc * sector:(i + 1) * spc * sector]
            image[offset:offset + len(chunk)] = chunk
        next_cluster += count
        short = _short_name(name, used)
        for entry in _lfn_entries(name, _lfn_checksum(short)):
            root += entry
        root += struct.pack("<11sBBBHHHHHHHI", short, 0x20, 0, 0, tod, date, date, 0, tod, date, first,
                            len(data))
    start = (1 + 2 * fat_sectors) * sector
    image[start:start + len(root)] = root
    for copy in range(2):
        offset = (1 + copy * fat_sectors) * sector
        image[offset:offset + len(fat)] = fat
    return bytes(image)


def write_seed(index: int, hostname: str | None = None, builder: str | None = None) -> bool:
    """Write the NoCloud seed onto instance disk ``index``; False (and a warning) without one."""
    if int(getenv("DISK_COUNT", "0") or 0) <= index:
        log(f"warning: cloud_init is set but the instance has no disk {index} for the seed: skipped")
        return False
    target, fmt = disk(index)
    files = seed_files(hostname)
    builder = getenv("GENET_CIDATA_BUILDER") if builder is None else builder
    with tempfile.TemporaryDirectory(prefix="genet-cidata-") as tmp:
        seed = build_seed(files, Path(tmp), builder)
        write_image(seed, target, fmt, f"cloud-init seed on disk {index}")
    log(f"cloud-init: NoCloud seed ({', '.join(files)}) on disk {index}")
    return True
