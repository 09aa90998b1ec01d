"""genet-noded's procedures for cluster administration: commands and files from the master
(gnt-cluster command and copyfile go over noded's mutual TLS, not SSH), real disk sizes
(repair-disk-sizes), certificate renewal (renew-crypto), out-of-band programs run on the master
and the node's own powercycle. Mixed into noded.NodeProcedures.

Only a holder of the cluster certificate reaches these, and every such holder is a node of the
cluster that may already create, start and remove instances: running a command adds no power.
"""
from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

from genet import errors, oob, paths, powercycle, ssl_utils
from genet.master_ip import MasterNetwork
from genet.objects import Disk
from genet.rpc_defs import CommandResult

MAX_OUTPUT = 1 << 20     # bytes of a command's output returned (its tail)

# Run by an installed version's interpreter once the old noded is gone: argv is the old noded's
# pid and whether to start the master daemons too. It starts them with itself (sys.executable).
_RESTART = """
import os, sys, time
from genet import daemon_util
old, master = int(sys.argv[1]), sys.argv[2] == "1"
deadline = time.monotonic() + 30
while daemon_util.process_alive(old) and time.monotonic() < deadline:
    time.sleep(0.05)
daemon_util.start("genet-noded")
if master:
    daemon_util.start_master_daemons()
"""


def versions_dir() -> Path:
    """Where installed versions live: one directory per version, each a Python environment with
    that genet (``bin/python3``), as Ganeti's /usr/lib/ganeti/VERSION."""
    return paths.root() / "usr/lib/genet/versions"


def installed_versions() -> list[str]:
    from genet import __version__
    found = {p.name for p in versions_dir().glob("*") if (p / "bin/python3").exists()} if versions_dir().is_dir() \
        else set()
    return sorted(found | {__version__})


def _certificate_path(kind: str) -> Path:
    from genet.hypervisor.kvm import display
    places = {"rapi": lambda: paths.data_dir() / "rapi.pem", "spice": display.spice_cert, "spice-ca": display.spice_ca}
    if kind not in places:
        raise errors.OpPrereqError(f"unknown certificate {kind!r} (known: {', '.join(places)})", errors.ECode.INVAL)
    return places[kind]()


def _rooted(path: str) -> Path:
    """An absolute path as this node sees it (below GENET_ROOT on a dev cluster node)."""
    if not os.path.isabs(path):
        raise errors.OpPrereqError(f"path {path!r} is not absolute", errors.ECode.INVAL)
    return paths.root() / os.path.relpath(os.path.normpath(path), "/")


def disk_size(path: Path, fmt: str) -> int:
    """Bytes a disk offers its guest: a block device's size, a raw file's length, the virtual
    size of an image in another format."""
    mode = os.stat(path).st_mode
    if stat.S_ISBLK(mode):
        with open(path, "rb") as dev:
            return dev.seek(0, os.SEEK_END)
    if fmt == "raw":
        return os.stat(path).st_size
    import json
    out = subprocess.run(["qemu-img", "info", "--output=json", "-f", fmt, str(path)], capture_output=True,
                         text=True, check=True).stdout
    return int(json.loads(out)["virtual-size"])


class AdminProcedures:
    """The procedures; see genet.rpc_defs for their contracts."""

    def rpc_blockdev_getdimensions(self, instance: str, template: str, disks: list[Disk],
                                   storage_params: dict) -> list:
        from genet.storage.base import get
        backend = get(template, storage_params)
        sizes = []
        for index, disk in enumerate(disks):
            try:
                access = backend.access(instance, disk, index)
                sizes.append(disk_size(Path(access["path"]), access.get("format") or "raw"))
            except (errors.GenericError, OSError, KeyError, ValueError, subprocess.CalledProcessError):
                sizes.append(None)
        return sizes

    def rpc_run_command(self, command: str) -> CommandResult:
        done = subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, cwd=str(paths.root()))
        return CommandResult(done.returncode, done.stdout[-MAX_OUTPUT:].decode(errors="replace"))

    def rpc_upload_file(self, path: str, data: str, mode: int) -> bool:
        from genet.config import write_atomic
        target = _rooted(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, base64.b64decode(data), mode=mode & 0o7777)
        return True

    def rpc_run_oob(self, program: str, command: str, remote_node: str, program_timeout: float) -> Any:
        return oob.run(program, command, remote_node, program_timeout)

    def rpc_node_powercycle(self) -> str:
        return powercycle.schedule()

    def rpc_installed_versions(self) -> list:
        return installed_versions()

    def rpc_version_switch(self, version: str) -> bool:
        """Stop the master daemons here, hand over to the new version's restart helper, and stop
        noded half a second after answering (as leave_cluster)."""
        from genet import daemon_util
        python = versions_dir() / version / "bin/python3"
        if not python.exists():
            raise errors.OpPrereqError(f"genet version {version} is not installed on {paths.node_name()}"
                                       f" ({python} missing)", errors.ECode.ENVIRON)
        master = daemon_util.stop_master_daemons()
        with open(paths.log_file("genet-noded"), "ab") as log:     # the helper's failures land there
            subprocess.Popen([str(python), "-c", _RESTART, str(os.getpid()), "1" if master else "0"],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
        self._stop_daemon()
        return True

    def rpc_x509_cert_create(self, validity: int) -> list:
        from genet import impexp
        return impexp.create_transfer_key(validity)

    def rpc_certificate_stage(self, pem: str) -> dict:
        return ssl_utils.stage(paths.cluster_cert(), pem)

    def rpc_certificate_switch(self, fingerprint: str) -> bool:
        return ssl_utils.switch(paths.cluster_cert(), fingerprint)

    def rpc_certificate_retire(self) -> bool:
        return ssl_utils.retire(paths.cluster_cert())

    def rpc_certificate_install(self, kind: str, pem: str | None) -> bool:
        from genet.config import write_atomic
        target = _certificate_path(kind)
        if pem is None:
            target.unlink(missing_ok=True)
        else:
            ssl_utils.check_pem(pem, need_key=kind != "spice-ca")
            write_atomic(target, pem.encode(), mode=0o600 if kind != "spice-ca" else 0o644)
        return True

    def rpc_restricted_command(self, cmd: str) -> str:
        from genet import restricted_commands
        return restricted_commands.run(cmd)

    def rpc_node_activate_master_ip(self, params: MasterNetwork, use_external_mip_script: bool) -> str:
        from genet import master_ip
        return master_ip.setup(params, master_ip.START, use_external_mip_script)

    def rpc_node_deactivate_master_ip(self, params: MasterNetwork, use_external_mip_script: bool) -> str:
        from genet import master_ip
        return master_ip.setup(params, master_ip.STOP, use_external_mip_script)

    def rpc_node_change_master_netmask(self, old_netmask: int, netmask: int, master_ip: str,
                                       master_netdev: str) -> bool:
        from genet import master_ip as mip
        mip.change_netmask(old_netmask, netmask, master_ip, master_netdev)
        return True
