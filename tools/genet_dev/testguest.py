"""build-test-guest: a tiny KVM/QEMU test guest (Debian cloud kernel + static busybox).

The guest is built from two Debian packages fetched with ``apt-get download`` and unpacked
with ``dpkg -x`` (nothing is installed on the host):

* the real kernel package behind ``linux-image-cloud-amd64`` (the metapackage only depends
  on ``linux-image-6.1.0-NN-cloud-amd64``; that one is resolved and downloaded), whose
  ``vmlinuz`` is used as is and whose virtio/ACPI modules go into the initrd (the cloud
  kernel builds them as modules; their order comes from each module's ``.modinfo``
  ``depends=`` field, because the unpacked package carries no ``modules.dep``);
* ``busybox-static``, the only program in the initrd.

Nothing is committed: everything lives in a cache directory outside the repository,
``/var/cache/genet/test-guest`` unless ``$GENET_GUEST_CACHE`` or ``--cache DIR`` says
otherwise::

    vmlinuz         the kernel
    initrd.img      gzip'ed cpio (newc): busybox, virtio + ACPI modules, /init
    disk.raw        64 MiB raw disk; starts with the line "GENET-TEST-DISK"
    disk.qcow2      the same content as qcow2
    manifest.json   kernel version and packages, sha256 and size of every file,
                    build time, the kernel arguments and a hash of the recipe

A second run finds the manifest matching the files (and this recipe) and does nothing but
print the cache directory; ``--force`` rebuilds.

The guest's ``/init`` (PID 1) mounts proc, sys and devtmpfs, insmods the modules, brings
``eth0`` up from ``genet.ip=ADDR/PREFIX`` [``genet.gw=GW``] on the kernel command line (or
tries DHCP with ``udhcpc`` when there is no ``genet.ip``), starts busybox ``acpid`` (ACPI
power button -> ``poweroff -f``) and waits until it holds the event devices open, prints ``GENET-GUEST-READY uptime=<seconds>`` on ttyS0
and runs a shell on ttyS0 (restarted if it exits).  Kernel arguments: start from
``KERNEL_ARGS_BASE``.

Exit codes of the tool: 0 ready (the cache directory is printed), 1 a build step failed,
2 bad arguments.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from genet import netguard

DEFAULT_CACHE = Path("/var/cache/genet/test-guest")
CACHE_ENV = "GENET_GUEST_CACHE"
READY_MARKER = "GENET-GUEST-READY"
KERNEL_ARGS_BASE = "console=ttyS0 quiet"
KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX_PKG = "busybox-static"
DISK_HEADER = b"GENET-TEST-DISK\n"
DISK_SIZE = 64 * 1024 * 1024
MANIFEST = "manifest.json"
FILES = ("vmlinuz", "initrd.img", "disk.raw", "disk.qcow2")
RECIPE_VERSION = 1

# Modules wanted in the guest; their dependencies are added (and ordered) automatically.
# virtio_pci: the virtio devices of the pc machine; virtio_blk: /dev/vda; virtio_net: eth0;
# virtio_console, virtio_rng, virtio_balloon: harmless extras a hypervisor may attach;
# button + evdev: the ACPI power button as /dev/input/eventN for acpid.
WANTED_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng",
                  "virtio_balloon", "button", "evdev")
# Modules the guest cannot work without (the others are best effort).
REQUIRED_MODULES = ("virtio_pci", "virtio_blk", "virtio_net")

INIT_SCRIPT = r"""#!/bin/busybox sh
# /init of the genet test guest (PID 1; must never exit).
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /sbin /usr/bin /usr/sbin /var/log
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
export PS1='genet-guest# '
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
ln -sf /proc/self/fd /dev/fd 2>/dev/null
kver=$(uname -r)
while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/lib/modules/$kver/$mod.ko" 2>/dev/null || echo "genet-guest: insmod $mod failed"
done < /etc/genet/modules

ip= gw= host=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        genet.ip=*) ip=${arg#genet.ip=} ;;
        genet.gw=*) gw=${arg#genet.gw=} ;;
        genet.hostname=*) host=${arg#genet.hostname=} ;;
    esac
done
hostname "${host:-genet-guest}"
ip link set lo up
if [ -n "$ip" ]; then
    n=0
    while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 20 ]; do sleep 0.1; n=$((n+1)); done
fi
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    if [ -n "$ip" ]; then
        ip addr add "$ip" dev eth0 || echo "genet-guest: bad genet.ip=$ip"
        [ -z "$gw" ] || ip route add default via "$gw" || echo "genet-guest: bad genet.gw=$gw"
    else
        udhcpc -i eth0 -n -q -t 3 -T 1 -s /etc/genet/udhcpc.script >/dev/null 2>&1 \
            || echo "genet-guest: no DHCP lease on eth0"
    fi
fi

# ACPI power button (QMP system_powerdown) -> /etc/acpi/PWRF/00000080 -> poweroff -f.
# acpid stays in the foreground (in this script's background) so that READY waits until it
# holds the event devices open: a daemonizing acpid opens them after it returns, and a
# button pressed in between is lost.
acpid -f -c /etc/acpi -l /var/log/acpid.log </dev/null >/dev/null 2>&1 &
acpid_pid=$!
n=0
while [ -e /dev/input/event0 ] && [ $n -lt 100 ] \
        && ! ls -l /proc/$acpid_pid/fd 2>/dev/null | grep -q /dev/input/event; do
    sleep 0.1; n=$((n+1))
done

echo "@READY_MARKER@ uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
while true; do
    setsid sh -c 'exec sh -i </dev/ttyS0 >/dev/ttyS0 2>&1'
    sleep 0.2
done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc event script of the genet test guest
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do ip route add default via "$r" dev "$interface"; break; done
        ;;
esac
exit 0
"""

POWER_BUTTON_SCRIPT = r"""#!/bin/sh
echo "genet-guest: ACPI power button: powering off" > /dev/ttyS0
sync
poweroff -f
"""

PROFILE = "export PS1='genet-guest# '\n"


class BuildError(Exception):
    """A build step failed; the message says which and why."""


# --- locations -------------------------------------------------------------------------

def cache_dir() -> Path:
    """The cache directory: $GENET_GUEST_CACHE, else /var/cache/genet/test-guest."""
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else DEFAULT_CACHE


def recipe_hash() -> str:
    """What changes the built guest (init script, module list, disk layout, packages)."""
    h = hashlib.sha256()
    for part in (str(RECIPE_VERSION), INIT_SCRIPT, UDHCPC_SCRIPT, POWER_BUTTON_SCRIPT, PROFILE,
                 " ".join(WANTED_MODULES), KERNEL_META, BUSYBOX_PKG, DISK_HEADER.decode(),
                 str(DISK_SIZE), KERNEL_ARGS_BASE, READY_MARKER):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(cache: Path) -> dict | None:
    try:
        return json.loads((cache / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def manifest_matches(cache: Path) -> bool:
    """True if manifest.json exists, is of this recipe and every file has its sha256."""
    manifest = read_manifest(cache)
    if not manifest or manifest.get("recipe") != recipe_hash():
        return False
    files = manifest.get("files", {})
    for name in FILES:
        entry = files.get(name)
        path = cache / name
        if not entry or not path.is_file() or path.stat().st_size != entry.get("size"):
            return False
        if sha256_file(path) != entry.get("sha256"):
            return False
    return True


def describe(cache: Path) -> dict:
    """What tests use: file paths (str) and the base kernel arguments."""
    manifest = read_manifest(cache) or {}
    return {
        "cache": str(cache),
        "kernel": str(cache / "vmlinuz"),
        "initrd": str(cache / "initrd.img"),
        "disk_raw": str(cache / "disk.raw"),
        "disk_qcow2": str(cache / "disk.qcow2"),
        "kernel_args_base": KERNEL_ARGS_BASE,
        "kernel_version": manifest.get("kernel_version"),
        "ready_marker": READY_MARKER,
    }


# --- commands --------------------------------------------------------------------------

def run(cmd: list[str], cwd: Path | None = None, log=None, stderr: bool = False) -> str:
    """The command's standard output (and error, with ``stderr``); BuildError if it fails."""
    if log:
        log(f"+ {' '.join(cmd)}")
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]}: command not found") from None
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n"
                         f"{(proc.stdout + proc.stderr).strip()}")
    return proc.stdout + proc.stderr if stderr else proc.stdout


def resolve_kernel_package(log=None) -> str:
    """linux-image-cloud-amd64 -> the real linux-image-X.Y.Z-N-cloud-amd64 it depends on."""
    pattern = re.compile(r"^\s*Depends:\s*(linux-image-\d\S*-cloud-amd64)\s*$", re.M)
    updated = ""
    for attempt in (0, 1):
        try:
            out = run(["apt-cache", "depends", KERNEL_META], log=log)
        except BuildError as err:
            out = str(err)
        found = pattern.findall(out)
        if found:
            return found[0]
        if attempt == 0:
            # empty or stale package lists: refresh them once (apt-get update exits 0 even
            # when it could not reach a source; its warnings tell)
            updated = run(["apt-get", "update", "-qq"], log=log, stderr=True)
    raise BuildError(f"cannot resolve the kernel package behind {KERNEL_META}: "
                     f"{explain_apt_failure(updated + out)} (apt-cache depends said: {out.strip() or 'nothing'}"
                     + (f"; apt-get update said: {updated.strip()}" if updated.strip() else "") + ")")


# what apt prints when a package source cannot be reached, and when a package does not exist
_UNREACHABLE = re.compile(r"Could not connect|No route to host|Network is unreachable|Connection timed out|"
                          r"Connection refused|Temporary failure resolving|Could not resolve")
_MISSING = re.compile(r"Unable to locate package (\S+)|Package '?(\S+?)'? has no installation candidate|"
                      r"Can't select (?:candidate )?version.* for '?(\S+?)'?$", re.M)


def explain_apt_failure(output: str, route=netguard.explain_route) -> str:
    """Why apt failed, from its output: the network (checked first: package lists that could
    not be fetched look like missing packages too), or a missing package."""
    if "Temporary failure resolving" in output or "Could not resolve" in output:
        hosts = sorted(set(re.findall(r"resolving '([^']+)'", output)))
        return f"the package source{''.join(' ' + h for h in hosts[:1])} cannot be resolved (no DNS?)"
    if _UNREACHABLE.search(output):
        why = "; ".join(route(a) for a in sorted(set(re.findall(r"\((\d+\.\d+\.\d+\.\d+)\)", output))))
        return "the package source is unreachable over the network" + (f": {why}" if why else "")
    missing = sorted({name for match in _MISSING.finditer(output) for name in match.groups() if name})
    if missing or "No packages found" in output:
        return (f"package {', '.join(missing) or KERNEL_META} is not in this machine's apt sources "
                "(run apt-get update, check /etc/apt/sources.list.d)")
    return "apt-get failed (see its output)"


def download(packages: list[str], dest: Path, log=None) -> list[Path]:
    # as root, apt would fetch as the "_apt" user, which cannot write into our private
    # temporary directory: fetch as root (it only writes .deb files into dest)
    try:
        run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *packages], cwd=dest, log=log)
    except BuildError as err:
        raise BuildError(f"cannot download {' '.join(packages)}: {explain_apt_failure(str(err))}\n{err}") from None
    debs = []
    for pkg in packages:
        matches = sorted(dest.glob(f"{pkg}_*.deb"))
        if not matches:
            raise BuildError(f"apt-get download {pkg} produced no .deb in {dest}")
        debs.append(matches[-1])
    return debs


def deb_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb), "Version"]).strip()


# --- kernel modules --------------------------------------------------------------------

def module_name(path: Path) -> str:
    name = path.name
    for suffix in (".ko.xz", ".ko"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.replace("-", "_")


def module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        data = lzma.decompress(data)
    return data


def modinfo(data: bytes) -> dict[str, str]:
    """The key=value pairs of an ELF64 module's .modinfo section (first value per key)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BuildError("not a little-endian ELF64 kernel module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    info: dict[str, str] = {}
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off:end] == b".modinfo":
            for item in data[offset:offset + size].split(b"\0"):
                key, sep, value = item.decode("utf-8", "replace").partition("=")
                if sep and key not in info:
                    info[key] = value
            break
    return info


def module_order(module_dir: Path, wanted: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(name, path) of the wanted modules and their dependencies, dependencies first."""
    index = {module_name(p): p for p in module_dir.rglob("*.ko*")
             if p.name.endswith((".ko", ".ko.xz"))}
    order: list[tuple[str, Path]] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            raise BuildError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
        path = index.get(name)
        if path is None:
            raise BuildError(f"kernel module {name} not found under {module_dir}")
        deps = modinfo(module_bytes(path)).get("depends", "")
        for dep in filter(None, deps.split(",")):
            visit(dep.replace("-", "_"), chain + (name,))
        done.add(name)
        order.append((name, path))

    for name in wanted:
        if name not in index and name not in REQUIRED_MODULES:
            continue          # an optional module this kernel does not ship (or has built in)
        visit(name, ())
    return order


# --- initrd ----------------------------------------------------------------------------

class Cpio:
    """A cpio archive in the "newc" format the kernel unpacks, written in memory."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1000
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        self.ino += 1
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(encoded), 0))
        self.buf.write(header.encode() + encoded)
        self.buf.write(b"\0" * (-(110 + len(encoded)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in self.dirs:
                self.dirs.add(sub)
                self._entry(sub, stat.S_IFDIR | mode, nlink=2)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, data)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        self.buf.write(b"\0" * (-self.buf.tell() % 512))
        return self.buf.getvalue()


def build_initrd(busybox: Path, kver: str, modules: list[tuple[str, Path]]) -> bytes:
    archive = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run",
              "root", "var/log", "etc/genet"):
        archive.mkdir(d)
    archive.chardev("dev/console", 5, 1)
    archive.chardev("dev/null", 1, 3, 0o666)
    archive.chardev("dev/ttyS0", 4, 64)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    archive.symlink("bin/sh", "busybox")
    archive.file("init", INIT_SCRIPT.replace("@READY_MARKER@", READY_MARKER).encode(), 0o755)
    archive.file("etc/genet/udhcpc.script", UDHCPC_SCRIPT.encode(), 0o755)
    archive.file("etc/acpi/PWRF/00000080", POWER_BUTTON_SCRIPT.encode(), 0o755)
    archive.file("etc/profile", PROFILE.encode())
    archive.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    archive.file("etc/group", b"root:x:0:\n")
    for name, path in modules:
        archive.file(f"lib/modules/{kver}/{name}.ko", module_bytes(path))
    archive.file("etc/genet/modules", "".join(f"{n}\n" for n, _ in modules).encode())
    # mtime=0: the same inputs give the same initrd
    return gzip.compress(archive.finish(), compresslevel=9, mtime=0)


# --- build -----------------------------------------------------------------------------

@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(cache: Path, log=None) -> dict:
    """Download, unpack and assemble every file into ``cache``; returns the manifest."""
    log = log or (lambda msg: None)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genet-test-guest-", dir=cache) as tmp_name:
        tmp = Path(tmp_name)
        kernel_pkg = resolve_kernel_package(log)
        log(f"kernel package: {kernel_pkg}")
        debs = download([kernel_pkg, BUSYBOX_PKG], tmp, log)
        root = tmp / "root"
        for deb in debs:
            run(["dpkg", "-x", str(deb), str(root)], log=log)
        kernels = sorted((root / "boot").glob("vmlinuz-*"))
        if len(kernels) != 1:
            raise BuildError(f"expected one vmlinuz in {kernel_pkg}, found {kernels}")
        kver = kernels[0].name[len("vmlinuz-"):]
        module_dir = None
        for base in (root / "lib/modules" / kver, root / "usr/lib/modules" / kver):
            if base.is_dir():
                module_dir = base
        if module_dir is None:
            raise BuildError(f"no modules directory for {kver} in {kernel_pkg}")
        busybox = next((p for p in (root / "bin/busybox", root / "usr/bin/busybox")
                        if p.is_file()), None)
        if busybox is None:
            raise BuildError(f"no busybox binary in {BUSYBOX_PKG}")
        modules = module_order(module_dir, WANTED_MODULES)
        log(f"modules (load order): {' '.join(n for n, _ in modules)}")

        out = tmp / "out"
        out.mkdir()
        shutil.copyfile(kernels[0], out / "vmlinuz")
        (out / "initrd.img").write_bytes(build_initrd(busybox, kver, modules))
        with open(out / "disk.raw", "wb") as disk:
            disk.write(DISK_HEADER)
            disk.truncate(DISK_SIZE)
        run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
             str(out / "disk.raw"), str(out / "disk.qcow2")], log=log)

        manifest = {
            "recipe": recipe_hash(),
            "kernel_version": kver,
            "kernel_package": kernel_pkg,
            "kernel_package_version": deb_version(debs[0]),
            "busybox_package": BUSYBOX_PKG,
            "busybox_package_version": deb_version(debs[1]),
            "modules": [n for n, _ in modules],
            "kernel_args_base": KERNEL_ARGS_BASE,
            "ready_marker": READY_MARKER,
            "disk_header": DISK_HEADER.decode(),
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "files": {name: {"sha256": sha256_file(out / name),
                             "size": (out / name).stat().st_size} for name in FILES},
        }
        # manifest last: an interrupted build never leaves a matching manifest behind
        (cache / MANIFEST).unlink(missing_ok=True)
        for name in FILES:
            os.replace(out / name, cache / name)
        tmp_manifest = out / MANIFEST
        tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_manifest, cache / MANIFEST)
    return manifest


def ensure(cache: Path | None = None, force: bool = False, log=None) -> dict:
    """Build the guest into the cache unless it is there already; returns describe()."""
    cache = Path(cache) if cache else cache_dir()
    if not force and manifest_matches(cache):
        return describe(cache)
    with locked(cache):
        # another process may have built it while we waited for the lock
        if force or not manifest_matches(cache):
            build(cache, log)
    return describe(cache)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build-test-guest",
        description="Build genet's tiny test guest (kernel, initrd, disks) into a cache "
                    "directory outside the repository.")
    parser.add_argument("--cache", metavar="DIR",
                        help=f"cache directory (default: ${CACHE_ENV} or {DEFAULT_CACHE})")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every step")
    args = parser.parse_args(argv)
    cache = Path(args.cache).resolve() if args.cache else cache_dir()
    log = (lambda msg: print(f"build-test-guest: {msg}", file=sys.stderr)) \
        if args.verbose else None
    try:
        if not args.force and manifest_matches(cache):
            print(cache)
            return 0
        ensure(cache, force=args.force, log=log)
    except (BuildError, OSError) as err:
        print(f"build-test-guest: {err}", file=sys.stderr)
        return 1
    print(cache)
    return 0
