"""The node RPC, defined once: every procedure genet-noded offers, its typed arguments, result,
timeout and the nodes it is meant for.

Each procedure is a stub below; its signature is the definition. genet-noded checks every call
against it before running ``NodeProcedures.rpc_<name>`` (whose signature must be the same, a test
holds them together), and the master's typed client (genet.rpc.NodeRpc) gets one method per
procedure that binds, checks and encodes the arguments and decodes the result into the types
declared here. Results with a fixed shape are dataclasses (WireObject), never positional lists.
"""
from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from genet import errors
from genet.master_ip import MasterNetwork
from genet.objects import Disk, DiskAccess, Instance
from genet.wire import WireObject, WireTypeError, decode, encode

REQUIRED = inspect.Parameter.empty

# Who a procedure is for (``Procedure.targets``)
ANY_NODE = "node"            # one node, usually an instance's primary or secondary
CANDIDATES = "candidates"    # the master candidates, which keep the config and the job queue
ALL_NODES = "all"            # every online node


# --- results ---------------------------------------------------------------

@dataclass
class MirrorStatus(WireObject):
    """One node's side of a mirrored disk (storage.base.MirroredTemplate.status)."""
    role: str | None               # "primary", "secondary", None when not assembled here
    state: str                     # storage.base.SYNC_STATES
    connected: bool = False
    local_ok: bool = False
    sync_percent: float | None = None
    estimated_time: int | None = None
    disk_state: str | None = None  # drbd: the local disk's state ("UpToDate", "Diskless", ...)


@dataclass
class DiskStatus(WireObject):
    """Ganeti's BlockDevStatus of one disk on one node, plus the mirror's view of this side."""
    dev_path: str
    major: int | None = None
    minor: int | None = None
    sync_percent: float | None = None
    estimated_time: int | None = None
    is_degraded: bool = False
    ldisk_status: int = 1          # LDS_OKAY
    mirror: MirrorStatus | None = None

    def ganeti_status(self) -> list:
        """The 7-tuple Ganeti's instance info reports as a disk's ``pstatus``/``sstatus``."""
        return [self.dev_path, self.major, self.minor, self.sync_percent, self.estimated_time,
                self.is_degraded, self.ldisk_status]


LDS_OKAY, LDS_FAULTY = 1, 3    # Ganeti's ldisk status values


@dataclass
class Heartbeat(WireObject):
    """A node's answer to the master's heartbeat."""
    master: str | None
    epoch: int
    cut_off: bool = False
    synced: list[str] = field(default_factory=list)   # instances whose mirrors this primary holds in sync (instance HA)
    serial: int = -1                   # the serial of its config copy (-1: none): a candidate behind is caught up
    queue_seq: int = 0                 # the newest job version its queue copy holds (0: none), likewise


@dataclass
class IncomingPorts(WireObject):
    """Where a migration target waits: the migration stream's port, and the NBD port of the disks
    it exports when the disks are copied along (non-shared storage)."""
    port: int
    nbd_port: int | None = None


@dataclass
class MigrationStatus(WireObject):
    """The progress of an outgoing migration (Hypervisor.migration_status)."""
    status: str                    # "active", "completed", "failed", "cancelled", "none"
    ram_total: int = 0
    ram_remaining: int = 0
    total_time_ms: int = 0
    downtime_ms: int = 0
    error: str = ""


@dataclass
class Transfer(WireObject):
    """What a disk or image copy moved, checked on both ends."""
    bytes: int
    sha256: str


@dataclass
class Version(WireObject):
    protocol: int
    version: str


# --- the table -------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    default: Any = REQUIRED


@dataclass(frozen=True)
class Procedure:
    name: str
    params: tuple[Param, ...]
    result: Any
    timeout: float | Callable[..., float]     # seconds, or computed from the arguments by name
    targets: str
    guarded: bool
    doc: str

    def bind(self, args: tuple, kwargs: dict) -> list:
        """The master's side: the wire argument list for a call (a wrong call is our bug: TypeError)."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{self.name}: {err}") from None
        bound.apply_defaults()
        values = [encode(v) for v in bound.args]
        for param, value in zip(self.params, values):
            decode(value, param.type, f"{self.name} argument {param.name!r}")
        return values

    def check(self, args: list) -> list:
        """noded's side: the arguments a call sent, checked and typed; OpPrereqError (wrong input)
        names what does not fit."""
        required = sum(p.default is REQUIRED for p in self.params)
        if not required <= len(args) <= len(self.params):
            count = str(required) if required == len(self.params) else f"{required} to {len(self.params)}"
            plural = "" if count == "1" else "s"
            raise errors.OpPrereqError(f"{self.name}: takes {count} argument{plural}, {len(args)} given",
                                       errors.ECode.INVAL)
        try:
            return [decode(value, param.type, f"argument {param.name!r}") for param, value in zip(self.params, args)]
        except WireTypeError as err:
            raise errors.OpPrereqError(f"{self.name}: {err}", errors.ECode.INVAL) from None

    def timeout_for(self, wire: list) -> float:
        if callable(self.timeout):
            return self.timeout(**{p.name: value for p, value in zip(self.params, wire)})
        return self.timeout

    def decode_result(self, payload: Any) -> Any:
        return decode(payload, self.result, f"the result of {self.name}")

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        return inspect.Signature([inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
                                  for p in self.params])


PROCEDURES: dict[str, Procedure] = {}
RESERVED = frozenset({"node", "timeout"})    # NodeRpc's own parameters


def procedure(timeout: float | Callable[..., float] = 30.0, targets: str = ANY_NODE, guarded: bool = False) -> Callable:
    """Declare the stub below as a procedure. ``guarded``: it acts on instances or their disks, so
    a node cut off from the master refuses it until the master stopped its stray instances."""
    def declare(stub: Callable) -> Callable:
        hints = typing.get_type_hints(stub)
        params = tuple(Param(p.name, hints[p.name], p.default) for p in inspect.signature(stub).parameters.values())
        assert not {p.name for p in params} & RESERVED, f"{stub.__name__}: {RESERVED} name the call's options"
        PROCEDURES[stub.__name__] = Procedure(stub.__name__, params, hints["return"], timeout, targets, guarded,
                                              inspect.getdoc(stub) or "")
        return stub
    return declare


def get(name: str) -> Procedure:
    try:
        return PROCEDURES[name]
    except KeyError:
        raise errors.OpPrereqError(f"unknown RPC procedure {name!r}", errors.ECode.INVAL) from None


# node and daemon state

@procedure(timeout=5)           # a /metrics scrape waits no longer for a node that does not answer
def data_collectors(settings: dict) -> dict:
    """The reports of the data collectors ``settings`` marks active ({name: {"active", "interval"}}):
    {name: {"timestamp", "data"} or None where the node has nothing to collect} (genet.collectors)."""


@procedure(timeout=10)
def version() -> Version:
    """The protocol version and the software version."""


@procedure(timeout=10)
def node_info() -> dict:
    """The node's name, clock, config serial, master epoch, ssconf, certificate, masterd pid and
    resources (noded.resources)."""


@procedure(timeout=lambda duration: duration + 30)
def test_delay(duration: float) -> bool:
    """Sleep (gnt-debug delay)."""


@procedure(targets=CANDIDATES)
def upload_config(text: str) -> int:
    """Store the master's config unless the node's is newer; the node's serial after."""


@procedure(targets=CANDIDATES)
def apply_config_change(change: dict) -> int:
    """Store one change of the master's config if it extends the node's (genet.config_file);
    the node's serial after: an older one says it missed a change and needs the whole config."""


@procedure(targets=CANDIDATES)
def get_config() -> str:
    """The node's config document."""


@procedure(timeout=15, targets=ALL_NODES)
def write_ssconf(values: dict) -> bool:
    """Write the ssconf files that differ."""


@procedure(targets=CANDIDATES)
def write_rapi_users(text: str | None) -> bool:
    """Store (or with null remove) the RAPI users file."""


@procedure(timeout=15, targets=CANDIDATES)
def jobqueue_update(records: list, epoch: int) -> int:
    """Store job queue records [id, version, text, status] of the master of ``epoch``."""


@procedure(targets=CANDIDATES)
def jobqueue_versions() -> list:
    """Every job's [id, version] in the node's copy of the queue."""


@procedure(targets=CANDIDATES)
def jobqueue_records(ids: list[int]) -> list:
    """The stored records of the given jobs."""


@procedure(targets=CANDIDATES)
def jobqueue_purge() -> bool:
    """Empty the node's copy of the queue."""


@procedure(timeout=5, targets=CANDIDATES)
def master_vote() -> str | None:
    """The master this node believes in (its ssconf)."""


@procedure(timeout=10, targets=ALL_NODES)
def fence(epoch: int, master: str) -> int:
    """Refuse writes of masters older than ``epoch`` from now on; the node's epoch."""


@procedure(timeout=5, targets=ALL_NODES)
def heartbeat(epoch: int, master: str) -> Heartbeat:
    """The master's periodic call; refused (EpochError) from a master of an older epoch."""


@procedure(timeout=120)
def stop_strays(epoch: int, allowed: list[str]) -> list[str]:
    """Pause and kill every instance running here that is not in ``allowed``; the names stopped."""


@procedure(timeout=60, targets=CANDIDATES)
def start_masterd(args: list[str] | None = None) -> int:
    """Start genet-masterd (and genet-rapi) here; its pid."""


@procedure(timeout=20, targets=CANDIDATES)
def stop_masterd() -> bool:
    """Stop genet-masterd and genet-rapi here."""


# the leadership store (genet.ha): an etcd member on each master candidate

@procedure(timeout=30, targets=CANDIDATES)
def etcd_start(members: dict[str, str], token: str) -> int:
    """Start this node's etcd member as one of a new store of ``members`` (name -> primary IP),
    the cluster named ``token``; its pid. Kept running by genet-noded from then on."""


@procedure(timeout=30, targets=CANDIDATES)
def etcd_stop() -> bool:
    """Stop this node's etcd member and forget its data (automatic failover turned off)."""


@procedure(timeout=20)
def leave_cluster() -> bool:
    """Forget the cluster and stop noded (gnt-node remove)."""


# the master IP (genet.master_ip), on the master node

@procedure(timeout=30)
def node_activate_master_ip(params: MasterNetwork, use_external_mip_script: bool) -> str:
    """Put the master IP on the master netdev here (master-ip-setup start); the script's output."""


@procedure(timeout=30)
def node_deactivate_master_ip(params: MasterNetwork, use_external_mip_script: bool) -> str:
    """Take the master IP off the master netdev here (master-ip-setup stop); the script's output."""


@procedure(timeout=30)
def node_change_master_netmask(old_netmask: int, netmask: int, master_ip: str, master_netdev: str) -> bool:
    """Give the master IP here its new netmask (added with it, then removed with the old one)."""


# hypervisors and instances

@procedure(timeout=15)
def hv_node_info(hypervisor: str) -> dict:
    """Memory (total, free, used by guests) and CPUs as the hypervisor sees them."""


@procedure(timeout=15)
def instance_info(name: str, hypervisor: str) -> dict | None:
    """The instance's state on this node (Hypervisor.info), null if it does not run here."""


@procedure(timeout=15)
def instances_info(hypervisors: list[str]) -> dict:
    """Every instance this node runs: {name: info with its hypervisor}."""


@procedure(timeout=15)
def instance_console(name: str, hypervisor: str) -> dict:
    """How the console is reached (Hypervisor.console)."""


@procedure(timeout=300, guarded=True)
def instance_start(inst: Instance, storage_params: dict, paused: bool = False) -> dict:
    """Resolve the disks here and start the instance; its info."""


@procedure(timeout=lambda shutdown_timeout, **_: shutdown_timeout + 60, guarded=True)
def instance_stop(name: str, hypervisor: str, shutdown_timeout: float, force: bool = False) -> bool:
    """ACPI shutdown, killed after ``shutdown_timeout`` seconds (at once with ``force``)."""


@procedure(timeout=300, guarded=True)
def instance_reboot(name: str, hypervisor: str, hard: bool) -> bool:
    """Soft or hard reboot of a running instance."""


@procedure(timeout=120, guarded=True)
def instance_hotplug(name: str, hypervisor: str, kind: str, action: str, index: int, device: dict | None) -> bool:
    """Plug (``add``) or unplug (``remove``) a disk or NIC of a running instance."""


@procedure(timeout=60, guarded=True)
def instance_balloon_memory(name: str, hypervisor: str, memory: int) -> bool:
    """Balloon a running instance's memory to ``memory`` MiB (Hypervisor.balloon_memory)."""


@procedure(timeout=120, guarded=True)
def instance_resize_disk(name: str, hypervisor: str, index: int, size: int) -> bool:
    """Tell a running guest its disk grew."""


@procedure(timeout=60, guarded=True)
def instance_migration_info(name: str, hypervisor: str) -> dict:
    """On the source: what the target must reproduce."""


@procedure(timeout=120, guarded=True)
def instance_accept_incoming(inst: Instance, storage_params: dict, address: str, info: dict | None,
                             copy_disks: bool = False) -> IncomingPorts:
    """On the target: start the process that waits for the migration stream."""


@procedure(timeout=3700, guarded=True)
def instance_migrate(name: str, hypervisor: str, address: str, port: int, live: bool,
                     nbd_port: int | None = None) -> bool:
    """On the source: start sending the instance to the target."""


@procedure(timeout=60, guarded=True)
def instance_migration_status(name: str, hypervisor: str) -> MigrationStatus:
    """On the source: the outgoing migration's progress."""


@procedure(timeout=60, guarded=True)
def instance_abort_migration(name: str, hypervisor: str, resume_completed: bool = False) -> bool:
    """On the source: cancel the outgoing migration."""


@procedure(timeout=120, guarded=True)
def instance_finish_incoming(name: str, hypervisor: str, success: bool) -> bool:
    """On the target: resume the migrated guest, or kill it when the migration failed."""


# disks (storage.base)

@procedure(timeout=300, guarded=True)
def blockdev_create(instance: str, template: str, disk: Disk, index: int, storage_params: dict) -> dict:
    """Create one disk here; its access dict."""


@procedure(timeout=120, guarded=True)
def blockdev_adopt(instance: str, template: str, disk: Disk, index: int, volume: str,
                   storage_params: dict) -> dict:
    """An existing volume becomes the disk (plain); its access dict with its size."""


@procedure(timeout=60, guarded=True)
def blockdev_release_adopted(instance: str, template: str, disk: Disk, index: int, volume: str,
                             storage_params: dict) -> bool:
    """Undo blockdev_adopt: the volume gets its old name back."""


@procedure(timeout=120, guarded=True)
def blockdev_remove(instance: str, template: str, disk: Disk, index: int, storage_params: dict) -> bool:
    """Remove one disk here."""


@procedure(timeout=120, guarded=True)
def blockdev_grow(instance: str, template: str, disk: Disk, index: int, new_size: int,
                  storage_params: dict) -> bool:
    """Grow one disk here to ``new_size`` MiB."""


@procedure(timeout=120, guarded=True)
def blockdev_rename(old: str, new: str, template: str, disks: list[Disk], storage_params: dict) -> bool:
    """Move an instance's disks to its new name."""


@procedure(timeout=120, guarded=True)
def blockdev_access(instance: str, template: str, disks: list[Disk], storage_params: dict) -> list[DiskAccess]:
    """Where each disk is here; fails naming a missing one."""


@procedure(timeout=30)
def blockdev_find(instance: str, template: str, disks: list[Disk], storage_params: dict,
                  first: int = 0) -> list[DiskStatus | None]:
    """Ganeti's status of each disk here, null for a missing one. ``first``: the index of
    ``disks[0]`` when they are not all the instance's disks (here and below)."""


@procedure(timeout=120, guarded=True)
def blockdev_assemble(instance: str, template: str, disks: list[Disk], role: str, storage_params: dict,
                      force: bool = False, first: int = 0) -> list[dict]:
    """Bring this node's side of the disks up as ``primary`` or ``secondary``; the primary's access dicts."""


@procedure(timeout=60, guarded=True)
def blockdev_shutdown(instance: str, template: str, disks: list[Disk], storage_params: dict,
                      unmirror: bool = False, first: int = 0) -> bool:
    """Take this node's side of the disks down (``unmirror``: leave single-node disks)."""


@procedure(timeout=120, guarded=True)
def blockdev_resync(instance: str, template: str, disks: list[Disk], storage_params: dict,
                    retarget: bool = False, first: int = 0) -> list:
    """On the primary: mirror again to the secondary (``retarget``: to the one the disks now name)."""


@procedure(timeout=120, guarded=True)
def blockdev_migration(instance: str, template: str, disks: list[Disk], storage_params: dict,
                       step: str, role: str) -> list:
    """One step (prepare, switch, finish, abort) of a live migration of mirrored disks."""


@procedure(timeout=lambda size, **_: 60 + size / 10, guarded=True)
def blockdev_wipe(instance: str, template: str, disk: Disk, index: int, storage_params: dict, offset: int,
                  size: int) -> bool:
    """Zero ``size`` MiB of this node's copy of a disk from ``offset`` MiB on (prealloc_wipe_disks)."""


@procedure(timeout=120, guarded=True)
def blockdev_receive(instance: str, template: str, disk: Disk, index: int, storage_params: dict,
                     address: str, compress: str = "none") -> int:
    """Wait for one disk's data from another node on a free port of ``address`` (expanding what
    ``compress`` compressed); the port."""


@procedure(timeout=lambda wait, **_: wait + 100, guarded=True)
def blockdev_received(port: int, wait: float) -> Transfer:
    """What the receiver on ``port`` stored, once the copy is over (waiting up to ``wait`` seconds)."""


@procedure(timeout=7200, guarded=True)
def blockdev_send(instance: str, template: str, disk: Disk, index: int, storage_params: dict,
                  address: str, port: int, compress: str = "none") -> Transfer:
    """Stream one disk to a receiver on another node (compressed with ``compress``)."""


# storage units (storage.units: gnt-node list-storage, modify-storage, repair-storage, volumes)

@procedure(timeout=60)
def storage_list(storage_type: str, storage_params: dict, name: str | None, fields: list[str]) -> list[list]:
    """The storage units of ``storage_type`` here (only ``name`` when given), each a row of ``fields``."""


@procedure(timeout=60)
def storage_modify(storage_type: str, storage_params: dict, name: str, changes: dict) -> bool:
    """Change fields of one storage unit (lvm-pv's allocatable)."""


@procedure(timeout=600)
def storage_execute(storage_type: str, storage_params: dict, name: str, operation: str) -> bool:
    """Run an operation on one storage unit (lvm-vg's fix-consistency: drops lost physical volumes and
    the volumes that lived on them)."""


@procedure(timeout=60)
def node_volumes(storage_params: dict) -> list[dict]:
    """Every logical volume here, once per physical volume it uses: {"name", "vg", "size", "dev"}."""


@procedure(timeout=60)
def storage_diagnose(storage_params: dict) -> list[list]:
    """Each registered disk template's state here: [template, where, usable, why not] (gnt-storage)."""


@procedure(timeout=10)
def drbd_helper() -> str | None:
    """The usermode helper this node's DRBD kernel module runs; null when the module is not loaded."""


# exports (gnt-backup)

@procedure(timeout=30)
def export_list() -> list[str]:
    """The complete exports on this node."""


@procedure(timeout=30)
def export_info(name: str) -> str:
    """The config.ini of an export."""


@procedure(timeout=120, guarded=True)
def export_start(name: str) -> str:
    """A fresh staging directory for an export."""


@procedure(timeout=120, guarded=True)
def export_receive(name: str, dump: str, address: str, compress: str = "none") -> int:
    """Wait for one disk image of the export on a free port (expanding what ``compress``
    compressed); the port."""


@procedure(timeout=120, guarded=True)
def export_finish(name: str, conf_text: str) -> bool:
    """Write config.ini and put the staging directory in place."""


@procedure(timeout=60, guarded=True)
def export_abort(name: str) -> bool:
    """Discard the staging directory."""


@procedure(timeout=300, guarded=True)
def export_remove(name: str) -> bool:
    """Remove an export."""


@procedure(timeout=7200, guarded=True)
def export_send(name: str, dump: str, address: str, port: int, compress: str = "none") -> Transfer:
    """Stream one disk image of an export to an importing node (compressed with ``compress``)."""


# OS definitions

@procedure(timeout=60)
def os_diagnose() -> list:
    """Every OS definition in the search path, valid or not, with the reason."""


@procedure(timeout=150, guarded=True)
def os_validate(name: str, osparams: dict) -> bool:
    """Check the OS (and variant) exists and its verify script accepts the parameters."""


@procedure(timeout=3700, guarded=True)
def os_create(inst: Instance, storage_params: dict, reinstall: bool = False) -> str:
    """Run the OS create script on the instance's disks; the log's path."""


@procedure(timeout=700, guarded=True)
def os_rename(inst: Instance, old_name: str, storage_params: dict) -> str:
    """Run the OS rename script; the log's path."""


# hooks (genet.hooks on the master, genet.hooks_runner here)

@procedure(timeout=3600, targets=ALL_NODES)
def hooks_runner(hpath: str, phase: str, env: dict[str, str]) -> list:
    """Run the site's hook scripts of ``hpath`` (Ganeti's directory names) and ``phase`` with
    ``env``; Ganeti's [script, result, output] per entry of the directory."""


# cluster administration (gnt-cluster command, copyfile, repair-disk-sizes, renew-crypto)

@dataclass
class CommandResult(WireObject):
    """What a command run on a node did (gnt-cluster command)."""
    exit_code: int
    output: str


@procedure(timeout=30)
def blockdev_getdimensions(instance: str, template: str, disks: list[Disk], storage_params: dict) -> list[int | None]:
    """The size in bytes of each disk here as its storage sees it, null where it cannot tell."""


@procedure(timeout=3600)
def run_command(command: str) -> CommandResult:
    """Run a shell command as root on this node (gnt-cluster command), its output and exit code."""


@procedure(timeout=3600)
def restricted_command(cmd: str) -> str:
    """Run one of this node's restricted commands (genet.restricted_commands) without arguments; its
    output (a refusal says no more than that it failed)."""


@procedure(timeout=300)
def upload_file(path: str, data: str, mode: int) -> bool:
    """Write a file (``data`` base64) at the same absolute path below this node's root (copyfile)."""


@procedure(timeout=30)
def certificate_stage(pem: str) -> dict:
    """Trust the new cluster certificate beside the current one (ssl_utils.stage); its info."""


@procedure(timeout=30)
def certificate_switch(fingerprint: str) -> bool:
    """Present the staged cluster certificate; the current one stays trusted (ssl_utils.switch)."""


@procedure(timeout=30)
def certificate_retire() -> bool:
    """Trust only the current cluster certificate again (ssl_utils.retire)."""


@procedure(timeout=30)
def certificate_install(kind: str, pem: str | None) -> bool:
    """Store the RAPI (``rapi``) or SPICE (``spice``, ``spice-ca``) certificate here."""


@procedure(timeout=60)
def x509_cert_create(validity: int) -> list:
    """Make a key and certificate for one remote export here (impexp.create_transfer_key), valid
    ``validity`` seconds; [its name, the certificate PEM] (the key stays on the node)."""


# node power (gnt-node power, health, powercycle; gnt-cluster epo)

@procedure(timeout=lambda program_timeout, **_: program_timeout + 15)
def run_oob(program: str, command: str, remote_node: str, program_timeout: float) -> Any:
    """On the master: run a node's out-of-band program (genet.oob.run); its JSON answer."""


@procedure(timeout=15)
def node_powercycle() -> str:
    """Restart this node soon, after answering (genet.powercycle); what will happen, in words."""


# software upgrades (gnt-cluster upgrade)

@procedure(timeout=10)
def installed_versions() -> list[str]:
    """The genet versions installed on this node (noded_admin.versions_dir), the running one included."""


@procedure(timeout=60)
def version_switch(version: str) -> bool:
    """Restart this node's daemons (noded, and masterd and the RAPI where they run) with the
    installed ``version``; answers before noded stops."""
