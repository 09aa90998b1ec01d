"""Guest OS definitions: Ganeti's OS interface (API version 20) on one node.

An OS definition is a directory named after the OS, holding five executable scripts
(``create``, ``import``, ``export``, ``rename``, ``verify``) and a few text files:

``ganeti_api_version``
    the API versions the scripts follow, one a line; genet speaks 20 and 15 and uses the
    highest one both sides know (15 needs no ``verify`` script and has no OS parameters).
``variants.list`` (optional)
    the variants the OS supports, one a line (``#`` comments and empty lines ignored);
    an OS is then named ``NAME+VARIANT``; without variants it is named ``NAME``.
``parameters.list`` (optional)
    the OS parameters, ``name description`` a line; they reach the scripts as ``OSP_NAME``.
``genet_disk_formats`` (optional, a genet extension)
    the disk formats the scripts can write, one a line or space separated; without it
    ``raw`` only.  The scripts see ``DISK_%N_PATH`` as a plain file or block device, so a
    qcow2 disk is only handed to an OS that says it handles qcow2 itself (the bundled
    ``image`` OS writes through ``qemu-img``; ``noop`` writes nothing).

Where definitions are found, first match of a name wins:

1. each directory of ``$GENET_OS_SEARCH_PATH`` (colon separated);
2. ``ROOT/srv/genet/os`` (:func:`genet.paths.root`);
3. the definitions bundled with genet, the repository's ``os/`` directory.

Scripts run with a clean environment (Ganeti's variables, listed in :func:`environment`,
plus a fixed ``PATH``), in the OS directory, with a timeout; their output goes to
``LOG_DIR/os/<op>-<instance>-<timestamp>.log``; a failure raises :class:`OsError` whose
message ends with the last lines of that log.
"""
from __future__ import annotations

import datetime
import fcntl
import os
import sys
import re
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from genet import errors, paths

API_VERSION = 20
SUPPORTED_API_VERSIONS = frozenset({15, 20})
SCRIPTS = ("create", "import", "export", "rename", "verify")
OPS = SCRIPTS
API_FILE = "ganeti_api_version"
VARIANTS_FILE = "variants.list"
PARAMETERS_FILE = "parameters.list"
FORMATS_FILE = "genet_disk_formats"
SEARCH_PATH_ENV = "GENET_OS_SEARCH_PATH"
IMAGE_STORE_ENV = "GENET_IMAGE_STORE"
SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOG_TAIL_LINES = 20
# Seconds a script may run before it is killed (its whole process group).
DEFAULT_TIMEOUTS = {"create": 3600.0, "import": 6 * 3600.0, "export": 6 * 3600.0,
                    "rename": 600.0, "verify": 120.0}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class OsError(errors.OpExecError):
    """An OS definition is missing or broken, or one of its scripts failed."""


# --- definitions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OsDefinition:
    """One valid OS definition found on this node."""
    name: str
    path: Path
    api_versions: tuple[int, ...]
    variants: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    disk_formats: tuple[str, ...] = ("raw",)

    @property
    def api_version(self) -> int:
        """The version genet speaks to these scripts: the highest one both know."""
        return max(SUPPORTED_API_VERSIONS.intersection(self.api_versions))

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.parameters)

    def script(self, op: str) -> Path:
        if op not in SCRIPTS:
            raise OsError(f"unknown OS script {op!r} (known: {', '.join(SCRIPTS)})")
        return self.path / op

    def full_names(self) -> list[str]:
        """``name`` or, with variants, every ``name+variant``."""
        return [f"{self.name}+{v}" for v in self.variants] if self.variants else [self.name]

    def check_variant(self, variant: str | None) -> str:
        """The variant the scripts get for a requested one ('' or None: the default)."""
        if not variant:
            return self.variants[0] if self.variants else ""
        if not self.variants:
            raise OsError(f"OS {self.name} does not support variants (asked for {variant!r})")
        if variant not in self.variants:
            raise OsError(f"OS {self.name} has no variant {variant!r}"
                          f" (supported: {', '.join(self.variants)})")
        return variant

    def to_dict(self) -> dict:
        """A JSON-friendly description (for RPC and ``gnt-os info``)."""
        return {"name": self.name, "path": str(self.path), "valid": True, "diagnose": "",
                "api_versions": list(self.api_versions), "variants": list(self.variants),
                "parameters": [list(p) for p in self.parameters],
                "disk_formats": list(self.disk_formats)}


def split_name(name: str) -> tuple[str, str]:
    """``"os+variant"`` → ``("os", "variant")``; ``"os"`` → ``("os", "")``."""
    base, _, variant = name.partition("+")
    return base, variant


def bundled_dir() -> Path:
    """The definitions shipped with genet: the repository's ``os/``, or share/genet/os of an install."""
    source = Path(__file__).resolve().parents[1] / "os"
    return source if source.is_dir() else Path(sys.prefix) / "share/genet/os"


def search_path() -> list[Path]:
    """The directories searched for OS definitions, in order."""
    dirs = [Path(p) for p in os.environ.get(SEARCH_PATH_ENV, "").split(":") if p]
    dirs.append(paths.root() / "srv/genet/os")
    dirs.append(bundled_dir())
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def image_store() -> Path:
    """Where OS images are looked up by name (``$GENET_IMAGE_STORE``, else ROOT/srv/genet/images)."""
    value = os.environ.get(IMAGE_STORE_ENV)
    return Path(value) if value else paths.root() / "srv/genet/images"


def _list_file(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a text file ([] when it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def load(path: Path, name: str | None = None) -> OsDefinition:
    """Read and check the definition in ``path``; raises :class:`OsError` saying what is wrong."""
    path = Path(path)
    name = name or path.name
    if not _NAME_RE.match(name):
        raise OsError(f"invalid OS name {name!r} (letters, digits, '.', '_' and '-' only)")
    if not path.is_dir():
        raise OsError(f"{path} is not a directory")
    api_path = path / API_FILE
    try:
        api_lines = _list_file(api_path) if api_path.is_file() else None
    except (OSError, UnicodeDecodeError) as err:
        raise OsError(f"cannot read {API_FILE}: {err}") from None
    if api_lines is None:
        raise OsError(f"missing file {API_FILE!r}")
    try:
        versions = tuple(int(line) for line in api_lines)
    except ValueError:
        raise OsError(f"bad API version in {API_FILE}: {' '.join(api_lines)!r} (expected numbers, one a line)") \
            from None
    if not versions:
        raise OsError(f"bad API version: {API_FILE} is empty")
    if not SUPPORTED_API_VERSIONS.intersection(versions):
        raise OsError(f"bad API version {'/'.join(map(str, versions))}: genet supports"
                      f" {', '.join(map(str, sorted(SUPPORTED_API_VERSIONS, reverse=True)))}")
    api = max(SUPPORTED_API_VERSIONS.intersection(versions))
    for script in SCRIPTS:
        if script == "verify" and api < 20:
            continue
        spath = path / script
        if script == "create" and not spath.exists() and (path / "create_untrusted").exists():
            raise OsError("only an untrusted create script (create_untrusted): Ganeti runs it in a helper VM"
                          " booted from the cluster's install image; genet runs no helper VMs")
        if not spath.exists():
            raise OsError(f"missing script {script!r}")
        try:
            st = spath.stat()
        except OSError as err:
            raise OsError(f"cannot stat script {script!r}: {err}") from None
        if not stat.S_ISREG(st.st_mode):
            raise OsError(f"script {script!r} is not a regular file")
        if not st.st_mode & stat.S_IXUSR or not os.access(spath, os.X_OK):
            raise OsError(f"script {script!r} is not executable")
    try:
        variants = tuple(dict.fromkeys(_list_file(path / VARIANTS_FILE)))
        params: list[tuple[str, str]] = []
        if api >= 20:
            for line in _list_file(path / PARAMETERS_FILE):
                pname, doc = (re.split(r"\s+", line, maxsplit=1) + [""])[:2]
                if not re.match(r"^[A-Za-z0-9_-]+$", pname):
                    raise OsError(f"bad parameter name {pname!r} in {PARAMETERS_FILE}")
                params.append((pname, doc.strip()))
        formats = tuple(dict.fromkeys(f for line in _list_file(path / FORMATS_FILE) for f in line.split()))
    except (OSError, UnicodeDecodeError) as err:
        raise OsError(f"cannot read the definition: {err}") from None
    for variant in variants:
        if not _NAME_RE.match(variant):
            raise OsError(f"bad variant name {variant!r} in {VARIANTS_FILE}")
    return OsDefinition(name=name, path=path, api_versions=versions, variants=variants,
                        parameters=tuple(params), disk_formats=formats or ("raw",))


def _candidates() -> list[tuple[str, Path]]:
    """Every (name, directory) in the search path, in search order (duplicates included)."""
    found = []
    for directory in search_path():
        try:
            entries = sorted(directory.iterdir())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith(".") and entry.name != "__pycache__":
                found.append((entry.name, entry))
    return found


def diagnose() -> list[dict]:
    """Every OS directory on this node, valid or not, in search order.

    Each entry: ``name``, ``path``, ``valid``, ``diagnose`` (why it is invalid, or '';
    for a hidden one, which definition hides it), ``hidden`` (an earlier directory of the
    search path has the same name), ``api_versions``, ``variants``, ``parameters``,
    ``disk_formats``.  This is what ``gnt-os diagnose`` shows for each node.
    """
    result = []
    first: dict[str, Path] = {}
    for name, path in _candidates():
        try:
            entry = load(path, name).to_dict()
        except OsError as err:
            entry = {"name": name, "path": str(path), "valid": False, "diagnose": str(err),
                     "api_versions": [], "variants": [], "parameters": [], "disk_formats": []}
        entry["hidden"] = name in first
        if entry["hidden"]:
            entry["diagnose"] = (entry["diagnose"] + "; " if entry["diagnose"] else "") + \
                f"hidden by {first[name]}"
        else:
            first[name] = path
        result.append(entry)
    return result


def discover() -> list[OsDefinition]:
    """The valid OS definitions on this node (the first of each name in the search path)."""
    result, seen = [], set()
    for name, path in _candidates():
        if name in seen:
            continue
        seen.add(name)
        try:
            result.append(load(path, name))
        except OsError:
            pass
    return result


def get(name: str) -> OsDefinition:
    """The definition of ``name`` (``"os"`` or ``"os+variant"``; the variant must be supported)."""
    base, variant = split_name(name)
    if not base:
        raise OsError("no OS name given")
    for cand_name, path in _candidates():
        if cand_name == base:
            try:
                definition = load(path, base)
            except OsError as err:
                raise OsError(f"OS {base} ({path}) is not valid: {err}") from None
            if variant:
                definition.check_variant(variant)
            return definition
    raise OsError(f"OS {base!r} not found (searched {', '.join(str(d) for d in search_path())})")


# --- environment -----------------------------------------------------------------------------


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(_value(v) for v in value)
    return str(value)


def _osparam_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _value(value)


def osparam_var(name: str) -> str:
    """The variable an OS parameter travels in: ``dhcp`` → ``OSP_DHCP``."""
    return "OSP_" + name.upper().replace("-", "_")


def core_environment(os_def: OsDefinition, variant: str | None = None, osparams: dict | None = None,
                     debug: int = 0) -> dict[str, str]:
    """What every script gets, with or without an instance (``verify`` only gets this)."""
    env = {
        "PATH": SCRIPT_PATH,
        "OS_API_VERSION": str(os_def.api_version),
        "OS_NAME": os_def.name,
        "OS_VARIANT": os_def.check_variant(variant) if os_def.api_version >= 15 else "",
        "DEBUG_LEVEL": str(int(debug)),
        # genet extensions: where genet lives on this node, and its image store
        "GENET_ROOT": str(paths.root()),
        IMAGE_STORE_ENV: str(image_store()),
    }
    for pname, pvalue in (osparams or {}).items():
        env[osparam_var(pname)] = _osparam_value(pvalue)
    return env


def _backend_type(disk: dict) -> str:
    path = disk.get("path")
    try:
        if path and stat.S_ISBLK(os.stat(path).st_mode):
            return "block"
    except OSError:
        pass
    fmt = disk.get("format", "raw")
    return "file:loop" if fmt == "raw" else f"file:{fmt}"


def environment(op: str, inst: dict, disks: list[dict], variant: str | None = None,
                osparams: dict | None = None, extra: dict | None = None, *,
                os_def: OsDefinition | None = None, old_name: str | None = None,
                disk_index: int | None = None, reinstall: bool = False,
                debug: int = 0) -> dict[str, str]:
    """The environment of OS script ``op`` for instance ``inst`` (Ganeti's API 20 variables).

    ``disks`` are the instance's disks resolved on this node (storage access dicts:
    ``path``, ``format``, ``mode``, ``size`` in MiB, ``uuid``); ``variant`` and ``osparams``
    default to the instance's (``inst["os"]`` = ``name[+variant]``, ``inst["osparams"]``);
    ``extra`` is added last.  Variables:

    common: ``OS_API_VERSION OS_NAME OS_VARIANT DEBUG_LEVEL PATH INSTANCE_NAME INSTANCE_OS
    INSTANCE_UUID INSTANCE_PRIMARY_NODE INSTANCE_SECONDARY_NODES HYPERVISOR DISK_COUNT
    DISK_%N_PATH DISK_%N_ACCESS DISK_%N_UUID DISK_%N_NAME DISK_%N_FRONTEND_TYPE
    DISK_%N_BACKEND_TYPE NIC_COUNT NIC_%N_MAC NIC_%N_UUID NIC_%N_NAME NIC_%N_IP NIC_%N_MODE
    NIC_%N_BRIDGE NIC_%N_LINK NIC_%N_VLAN NIC_%N_FRONTEND_TYPE NIC_%N_NETWORK_*
    INSTANCE_BE_<param> INSTANCE_HV_<param> OSP_<PARAM>``; genet extensions:
    ``DISK_%N_FORMAT DISK_%N_SIZE GENET_ROOT GENET_IMAGE_STORE``;
    create: ``INSTANCE_REINSTALL=1`` for a reinstall; rename: ``OLD_INSTANCE_NAME``;
    export: ``EXPORT_INDEX EXPORT_DISK_PATH EXPORT_DEVICE``; import: ``IMPORT_INDEX
    IMPORT_DISK_PATH IMPORT_DEVICE`` (the stream itself is stdout/stdin).
    Optional values that are unset (no IP, no name, ...) are left out, as Ganeti does.
    """
    if op not in SCRIPTS:
        raise OsError(f"unknown OS script {op!r} (known: {', '.join(SCRIPTS)})")
    os_name = inst.get("os") or ""
    base, inst_variant = split_name(os_name)
    if os_def is None:
        os_def = get(base)
    if variant is None:
        variant = inst_variant
    if osparams is None:
        osparams = inst.get("osparams") or {}
    env = core_environment(os_def, variant, osparams, debug)
    env["INSTANCE_NAME"] = inst["name"]
    env["INSTANCE_OS"] = os_name or os_def.name
    for key in ("uuid", "primary_node"):
        if inst.get(key):
            env[f"INSTANCE_{key.upper()}"] = str(inst[key])
    if "secondary_nodes" in inst:
        env["INSTANCE_SECONDARY_NODES"] = " ".join(inst.get("secondary_nodes") or [])
    env["HYPERVISOR"] = inst.get("hypervisor") or ""
    hvparams = inst.get("hvparams") or {}
    config_disks = inst.get("disks") or []

    env["DISK_COUNT"] = str(len(disks))
    for index, disk in enumerate(disks):
        conf = config_disks[index] if index < len(config_disks) else {}
        if disk.get("path"):
            env[f"DISK_{index}_PATH"] = str(disk["path"])
        if disk.get("uri"):
            env[f"DISK_{index}_URI"] = str(disk["uri"])
        env[f"DISK_{index}_ACCESS"] = disk.get("mode") or conf.get("mode") or "rw"
        uuid = disk.get("uuid") or conf.get("uuid")
        if uuid:
            env[f"DISK_{index}_UUID"] = str(uuid)
        name = disk.get("name") or conf.get("name")
        if name:
            env[f"DISK_{index}_NAME"] = str(name)
        if hvparams.get("disk_type"):
            env[f"DISK_{index}_FRONTEND_TYPE"] = str(hvparams["disk_type"])
        env[f"DISK_{index}_BACKEND_TYPE"] = _backend_type(disk)
        env[f"DISK_{index}_FORMAT"] = disk.get("format") or conf.get("format") or "raw"
        size = disk.get("size", conf.get("size"))
        if size is not None:
            env[f"DISK_{index}_SIZE"] = str(size)

    nics = inst.get("nics") or []
    env["NIC_COUNT"] = str(len(nics))
    for index, nic in enumerate(nics):
        params = dict(nic.get("nicparams") or {})
        mode = nic.get("mode") or params.get("mode") or "bridged"
        link = nic.get("link") or params.get("link") or ""
        env[f"NIC_{index}_MAC"] = nic.get("mac") or ""
        for key in ("uuid", "name", "ip", "vlan"):
            if nic.get(key):
                env[f"NIC_{index}_{key.upper()}"] = str(nic[key])
        env[f"NIC_{index}_MODE"] = mode
        if mode == "bridged" and link:
            env[f"NIC_{index}_BRIDGE"] = link
        if link:
            env[f"NIC_{index}_LINK"] = link
        if hvparams.get("nic_type"):
            env[f"NIC_{index}_FRONTEND_TYPE"] = str(hvparams["nic_type"])
        net = nic.get("netinfo") or {}
        for key in ("name", "uuid", "family", "subnet", "gateway", "subnet6", "gateway6", "mac_prefix"):
            if net.get(key):
                env[f"NIC_{index}_NETWORK_{key.upper()}"] = str(net[key])
        if net.get("tags"):
            env[f"NIC_{index}_NETWORK_TAGS"] = " ".join(net["tags"])

    for kind, source in (("BE", inst.get("beparams") or {}), ("HV", hvparams)):
        for key, value in source.items():
            env[f"INSTANCE_{kind}_{key}"] = _value(value)

    if op == "create" and reinstall:
        env["INSTANCE_REINSTALL"] = "1"
    if op == "rename":
        if not old_name:
            raise OsError("the rename script needs the old instance name")
        env["OLD_INSTANCE_NAME"] = old_name
    if op in ("import", "export"):
        if disk_index is None or not 0 <= disk_index < len(disks):
            raise OsError(f"{op} needs the index of one of the {len(disks)} disks (got {disk_index})")
        prefix = op.upper()
        env[f"{prefix}_INDEX"] = str(disk_index)
        if f"DISK_{disk_index}_PATH" in env:
            env[f"{prefix}_DISK_PATH"] = env[f"DISK_{disk_index}_PATH"]
            env[f"{prefix}_DEVICE"] = env[f"DISK_{disk_index}_PATH"]
        if f"DISK_{disk_index}_URI" in env:
            env[f"{prefix}_DISK_URI"] = env[f"DISK_{disk_index}_URI"]
    for key, value in (extra or {}).items():
        env[str(key)] = _value(value)
    return env


# --- running scripts --------------------------------------------------------------------------


@dataclass
class RunResult:
    op: str
    os_name: str
    target: str                  # the instance (or, for verify, the OS) the script ran for
    log_path: Path
    duration: float
    export_size: int | None = None   # what an export script predicted on EXP_SIZE_FD
    env: dict[str, str] = field(default_factory=dict, repr=False)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text) or "_"


def new_log_path(op: str, target: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H_%M_%S_%f")
    directory = paths.log_dir() / "os"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{op}-{_safe(target)}-{stamp}.log"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, start: int = 0) -> str:
    """The last ``lines`` lines of a log (from byte ``start``)."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").rstrip("\n").splitlines()[-lines:])


def _check_formats(os_def: OsDefinition, op: str, disks: list[dict], disk_index: int | None) -> None:
    chosen = range(len(disks)) if disk_index is None else [disk_index]
    for index in chosen:
        if not 0 <= index < len(disks):
            continue
        fmt = disks[index].get("format") or "raw"
        if fmt not in os_def.disk_formats:
            raise OsError(f"OS scripts need raw disks: OS {os_def.name} cannot {op} disk {index}"
                          f" in {fmt} format (it handles {', '.join(os_def.disk_formats)};"
                          f" list {fmt} in its {FORMATS_FILE} file if its scripts write it themselves)")


def _execute(os_def: OsDefinition, op: str, env: dict[str, str], target: str, args: list[str],
             timeout: float | None, stdin: IO | int | None, stdout: IO | int | None,
             want_size: bool) -> RunResult:
    script = os_def.script(op)
    log_path = new_log_path(op, target)
    timeout = DEFAULT_TIMEOUTS[op] if timeout is None else timeout
    size_r = size_w = None
    if want_size:
        size_r, size_w = os.pipe()
        fcntl.fcntl(size_r, fcntl.F_SETFL, fcntl.fcntl(size_r, fcntl.F_GETFL) | os.O_NONBLOCK)
        env = dict(env, EXP_SIZE_FD=str(size_w))
    start = time.monotonic()
    with open(log_path, "wb") as log:
        command = " ".join([str(script), *args])
        log.write(f"# {datetime.datetime.now().isoformat(timespec='seconds')} genet: {command} for {target}"
                  f" (OS API {env.get('OS_API_VERSION')})\n".encode())
        log.flush()
        header_end = log.tell()
        try:
            proc = subprocess.Popen([str(script), *args], cwd=str(os_def.path), env=env, close_fds=True,
                                    pass_fds=(size_w,) if size_w is not None else (),
                                    stdin=subprocess.DEVNULL if stdin is None else stdin,
                                    stdout=log if stdout is None else stdout, stderr=log,
                                    start_new_session=True)
        except OSError as err:
            for fd in (size_r, size_w):
                if fd is not None:
                    os.close(fd)
            raise OsError(f"OS {os_def.name}: cannot run {op} script for {target}: {err}") from None
        if size_w is not None:
            os.close(size_w)
        timed_out = False
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            returncode = proc.wait()
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        duration = time.monotonic() - start
        if timed_out:
            log.write(f"\n# genet: killed after {timeout:g} s\n".encode())
        elif returncode > 0:
            log.write(f"# genet: exit code {returncode}\n".encode())
        elif returncode < 0:
            log.write(f"# genet: killed by signal {-returncode}\n".encode())
    export_size = None
    if size_r is not None:
        try:
            raw = os.read(size_r, 4096).decode("ascii", "replace").strip()
            export_size = int(raw.splitlines()[0]) if raw else None
        except (OSError, ValueError, IndexError):
            export_size = None
        finally:
            os.close(size_r)
    if timed_out or returncode != 0:
        why = f"timed out after {timeout:g} s" if timed_out else (
            f"failed (exit code {returncode})" if returncode > 0 else f"was killed by signal {-returncode}")
        tail = log_tail(log_path, start=header_end)
        raise OsError(f"OS {os_def.name}: {op} script for {target} {why}; log {log_path}"
                      + (f", last lines:\n{tail}" if tail else " (empty)"))
    return RunResult(op=op, os_name=os_def.name, target=target, log_path=log_path, duration=duration,
                     export_size=export_size, env=env)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def run(op: str, inst: dict, disks: list[dict], variant: str | None = None, osparams: dict | None = None,
        extra: dict | None = None, *, os_def: OsDefinition | None = None, old_name: str | None = None,
        disk_index: int | None = None, reinstall: bool = False, debug: int = 0,
        timeout: float | None = None, stdin: IO | int | None = None,
        stdout: IO | int | None = None) -> RunResult:
    """Run OS script ``op`` (create, import, export, rename) for ``inst`` on this node.

    The environment is :func:`environment`'s; ``export`` writes the disk's dump to
    ``stdout`` (a file object or descriptor; required), ``import`` reads it from ``stdin``
    (required).  Disks in a format the OS does not handle (see ``genet_disk_formats``)
    are refused before anything runs.  Raises :class:`OsError` on failure or timeout.
    """
    if op == "verify":
        raise OsError("use verify_parameters() for the verify script")
    if op not in SCRIPTS:
        raise OsError(f"unknown OS script {op!r} (known: {', '.join(SCRIPTS)})")
    if os_def is None:
        os_def = get(split_name(inst.get("os") or "")[0])
    if op == "export" and stdout is None:
        raise OsError("export needs a stream to write the dump to")
    if op == "import" and stdin is None:
        raise OsError("import needs a stream to read the dump from")
    _check_formats(os_def, op, disks, disk_index if op in ("import", "export") else None)
    env = environment(op, inst, disks, variant, osparams, extra, os_def=os_def, old_name=old_name,
                      disk_index=disk_index, reinstall=reinstall, debug=debug)
    return _execute(os_def, op, env, inst["name"], [], timeout, stdin, stdout, want_size=op == "export")


def create(inst: dict, disks: list[dict], *, reinstall: bool = False, **kwargs) -> RunResult:
    """Install the OS onto the instance's disks (``reinstall``: over an existing install)."""
    return run("create", inst, disks, reinstall=reinstall, **kwargs)


def rename(inst: dict, disks: list[dict], old_name: str, **kwargs) -> RunResult:
    """Tell the OS the instance was renamed from ``old_name`` to ``inst["name"]``."""
    return run("rename", inst, disks, old_name=old_name, **kwargs)


def export_disk(inst: dict, disks: list[dict], index: int, out: IO | int, **kwargs) -> RunResult:
    """Dump disk ``index`` to the stream ``out``; ``export_size`` is the script's size estimate."""
    return run("export", inst, disks, disk_index=index, stdout=out, **kwargs)


def import_disk(inst: dict, disks: list[dict], index: int, inp: IO | int, **kwargs) -> RunResult:
    """Restore disk ``index`` from the stream ``inp`` (what :func:`export_disk` wrote)."""
    return run("import", inst, disks, disk_index=index, stdin=inp, **kwargs)


def verify_parameters(name: str, osparams: dict, *, debug: int = 0,
                      timeout: float | None = None) -> RunResult | None:
    """Run ``verify parameters`` of OS ``name`` (``os[+variant]``) on ``osparams``.

    Unknown parameter names are refused first, as Ganeti does; an API-15 OS has no
    parameters and no verify script (None is returned when there is nothing to run).
    """
    os_def = get(name)
    _, variant = split_name(name)
    unknown = sorted(set(osparams) - set(os_def.parameter_names))
    if unknown:
        raise OsError(f"OS {os_def.name} does not support the parameter(s) {', '.join(unknown)}"
                      + (f" (it knows: {', '.join(os_def.parameter_names)})" if os_def.parameters
                         else " (it has none)"))
    if os_def.api_version < 20:
        return None
    env = core_environment(os_def, variant, osparams, debug)
    return _execute(os_def, "verify", env, os_def.name, ["parameters"], timeout, None, None, want_size=False)


def validate(name: str, osparams: dict | None = None, checks: tuple[str, ...] = ("parameters",)) -> bool:
    """Ganeti's OS validation on this node: the OS exists and is valid, the variant is
    supported, and (check ``parameters``) the parameters are known and pass ``verify``."""
    unknown = set(checks) - {"parameters"}
    if unknown:
        raise OsError(f"unknown OS check(s) {', '.join(sorted(unknown))} (known: parameters)")
    get(name)
    if "parameters" in checks:
        verify_parameters(name, osparams or {})
    return True
