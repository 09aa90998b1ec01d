"""genet.osinterface: OS definitions (Ganeti OS API 20) and the bundled noop and image OSes."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from genet import osinterface, paths
from genet.osinterface import OsError

HEADER = b"GENET-TEST-DISK"
UUID0 = "6f1f6b0e-1111-4c8e-9a51-0c2b7f1a0001"
UUID1 = "6f1f6b0e-2222-4c8e-9a51-0c2b7f1a0002"


@pytest.fixture(autouse=True)
def node_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GENET_ROOT", str(tmp_path / "root"))
    for var in ("GENET_OS_SEARCH_PATH", "GENET_IMAGE_STORE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "root"


@pytest.fixture(scope="module")
def guest() -> Path:
    from genet_dev import testguest
    testguest.ensure()
    cache = testguest.cache_dir()
    assert (cache / "disk.raw").read_bytes()[:len(HEADER)] == HEADER
    return cache


def make_os(base: Path, name: str, scripts: dict[str, str] | None = None, api: str = "20\n",
            variants: str | None = None, params: str | None = None, formats: str | None = None) -> Path:
    """An OS definition under ``base``; scripts default to ``exit 0`` (sh)."""
    d = base / name
    d.mkdir(parents=True)
    for script in osinterface.SCRIPTS:
        body = (scripts or {}).get(script, "exit 0\n")
        (d / script).write_text("#!/bin/sh\n" + body)
        (d / script).chmod(0o755)
    if api is not None:
        (d / "ganeti_api_version").write_text(api)
    if variants is not None:
        (d / "variants.list").write_text(variants)
    if params is not None:
        (d / "parameters.list").write_text(params)
    if formats is not None:
        (d / "genet_disk_formats").write_text(formats)
    return d


def make_disks(tmp: Path, formats: list[str], size_mib: int = 64) -> list[dict]:
    tmp.mkdir(parents=True, exist_ok=True)
    disks = []
    for index, fmt in enumerate(formats):
        path = tmp / f"disk{index}.{fmt}"
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), f"{size_mib}M"], check=True)
        disks.append({"path": str(path), "format": fmt, "mode": "rw", "size": size_mib,
                      "uuid": [UUID0, UUID1][index] if index < 2 else f"uuid-{index}"})
    return disks


def make_inst(os_name: str = "noop", name: str = "inst1.example.com", osparams: dict | None = None,
              nics: list[dict] | None = None) -> dict:
    return {
        "name": name, "uuid": "0b6f4c36-6a8e-4f0c-9d0e-3d6b8f1e2a10", "os": os_name,
        "hypervisor": "kvm", "primary_node": "node1", "secondary_nodes": [],
        "beparams": {"maxmem": 128, "minmem": 128, "vcpus": 1, "auto_balance": True},
        "hvparams": {"kernel_path": "", "disk_type": "paravirtual", "nic_type": "paravirtual"},
        "osparams": osparams or {},
        "nics": nics if nics is not None else [
            {"uuid": "nic-uuid-0", "mac": "aa:00:00:12:34:56", "ip": "192.0.2.10", "mode": "bridged",
             "link": "gnt-br0", "name": "eth-front"}],
        "disks": [{"uuid": UUID0, "size": 64, "mode": "rw", "format": "raw", "name": "root"},
                  {"uuid": UUID1, "size": 64, "mode": "rw", "format": "raw", "name": None}],
    }


def read_raw(disk: dict, length: int) -> bytes:
    if disk["format"] == "raw":
        with open(disk["path"], "rb") as f:
            return f.read(length)
    out = Path(disk["path"]).with_suffix(".check.raw")
    subprocess.run(["qemu-img", "convert", "-f", disk["format"], "-O", "raw", disk["path"], str(out)],
                   check=True)
    try:
        with open(out, "rb") as f:
            return f.read(length)
    finally:
        out.unlink()


# --- discovery --------------------------------------------------------------------------------


def test_discovery_finds_bundled_noop_and_image():
    found = {d.name: d for d in osinterface.discover()}
    assert {"noop", "image"} <= set(found)
    noop, image = found["noop"], found["image"]
    assert noop.path == osinterface.bundled_dir() / "noop"
    assert noop.api_version == 20 and noop.variants == () and noop.parameters == ()
    assert image.parameter_names == ("image", "cloud_init", "ssh_keys", "hostname")
    assert "qcow2" in image.disk_formats
    assert osinterface.get("image").path == image.path
    assert osinterface.get("noop").full_names() == ["noop"]
    diag = {e["name"]: e for e in osinterface.diagnose()}
    assert diag["noop"]["valid"] and diag["noop"]["diagnose"] == ""


def test_search_path_order_and_root_dir(tmp_path, node_root, monkeypatch):
    make_os(node_root / "srv/genet/os", "local")
    assert osinterface.get("local").path == node_root / "srv/genet/os/local"
    first = tmp_path / "first"
    make_os(first, "noop", api="20\n15\n")
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", f"{first}:{tmp_path / 'absent'}")
    assert osinterface.get("noop").path == first / "noop"
    assert osinterface.get("noop").api_version == 20
    entries = [e for e in osinterface.diagnose() if e["name"] == "noop"]
    assert [e["hidden"] for e in entries] == [False, True]
    assert "hidden by" in entries[1]["diagnose"]


def test_variants(tmp_path, monkeypatch):
    make_os(tmp_path / "os", "multi", variants="# comment\nbookworm\n\ntrixie\n")
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(tmp_path / "os"))
    multi = osinterface.get("multi+trixie")
    assert multi.variants == ("bookworm", "trixie")
    assert multi.full_names() == ["multi+bookworm", "multi+trixie"]
    with pytest.raises(OsError, match="no variant 'sid'"):
        osinterface.get("multi+sid")
    with pytest.raises(OsError, match="does not support variants"):
        osinterface.get("noop+foo")
    with pytest.raises(OsError, match="'nosuchos' not found"):
        osinterface.get("nosuchos")
    env = osinterface.environment("create", make_inst("multi"), [])
    assert env["OS_VARIANT"] == "bookworm" and env["INSTANCE_OS"] == "multi"
    env = osinterface.environment("create", make_inst("multi+trixie"), [])
    assert env["OS_VARIANT"] == "trixie" and env["OS_NAME"] == "multi"


def test_diagnose_reports_broken_definitions(tmp_path, monkeypatch):
    base = tmp_path / "os"
    (make_os(base, "noverify") / "verify").unlink()
    (make_os(base, "notexec") / "create").chmod(0o644)
    make_os(base, "oldapi", api="10\n")
    make_os(base, "badapi", api="twenty\n")
    make_os(base, "noapi", api=None)
    (make_os(base, "dirscript") / "rename").unlink()
    (base / "dirscript" / "rename").mkdir()
    make_os(base, "api15", api="15\n")
    (base / "api15" / "verify").unlink()            # API 15 has no verify script
    (make_os(base, "untrusted") / "create").rename(base / "untrusted" / "create_untrusted")
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(base))
    diag = {e["name"]: e for e in osinterface.diagnose() if e["path"].startswith(str(base))}
    assert diag["noverify"]["valid"] is False
    assert diag["noverify"]["diagnose"] == "missing script 'verify'"
    assert diag["notexec"]["diagnose"] == "script 'create' is not executable"
    assert "bad API version 10" in diag["oldapi"]["diagnose"]
    assert "bad API version" in diag["badapi"]["diagnose"]
    assert "missing file 'ganeti_api_version'" in diag["noapi"]["diagnose"]
    assert "not a regular file" in diag["dirscript"]["diagnose"]
    assert diag["api15"]["valid"] and diag["api15"]["api_versions"] == [15]
    # Ganeti runs an untrusted create script in a helper VM from the cluster's install image
    assert diag["untrusted"]["diagnose"].startswith("only an untrusted create script (create_untrusted)")
    valid = {d.name for d in osinterface.discover()}
    assert "api15" in valid and not valid & {"noverify", "notexec", "oldapi", "badapi", "noapi"}
    with pytest.raises(OsError, match="not executable"):
        osinterface.get("notexec")


# --- environment ------------------------------------------------------------------------------


def test_environment_two_disks_one_nic(tmp_path):
    disks = make_disks(tmp_path, ["raw", "qcow2"])
    inst = make_inst("noop", osparams={"dhcp": "yes", "root-size": 8})
    env = osinterface.environment("create", inst, disks, debug=1)
    expected = {
        "OS_API_VERSION": "20", "INSTANCE_NAME": "inst1.example.com", "INSTANCE_OS": "noop",
        "OS_NAME": "noop", "OS_VARIANT": "", "HYPERVISOR": "kvm", "DEBUG_LEVEL": "1",
        "INSTANCE_UUID": inst["uuid"], "INSTANCE_PRIMARY_NODE": "node1", "INSTANCE_SECONDARY_NODES": "",
        "DISK_COUNT": "2",
        "DISK_0_PATH": disks[0]["path"], "DISK_0_ACCESS": "rw", "DISK_0_UUID": UUID0, "DISK_0_NAME": "root",
        "DISK_0_FRONTEND_TYPE": "paravirtual", "DISK_0_BACKEND_TYPE": "file:loop",
        "DISK_0_FORMAT": "raw", "DISK_0_SIZE": "64",
        "DISK_1_PATH": disks[1]["path"], "DISK_1_ACCESS": "rw", "DISK_1_UUID": UUID1,
        "DISK_1_BACKEND_TYPE": "file:qcow2", "DISK_1_FORMAT": "qcow2",
        "NIC_COUNT": "1", "NIC_0_MAC": "aa:00:00:12:34:56", "NIC_0_IP": "192.0.2.10",
        "NIC_0_MODE": "bridged", "NIC_0_LINK": "gnt-br0", "NIC_0_BRIDGE": "gnt-br0",
        "NIC_0_UUID": "nic-uuid-0", "NIC_0_NAME": "eth-front", "NIC_0_FRONTEND_TYPE": "paravirtual",
        "INSTANCE_BE_maxmem": "128", "INSTANCE_BE_vcpus": "1", "INSTANCE_BE_auto_balance": "True",
        "INSTANCE_HV_disk_type": "paravirtual", "INSTANCE_HV_kernel_path": "",
        "OSP_DHCP": "yes", "OSP_ROOT_SIZE": "8",
        "GENET_ROOT": str(paths.root()),
    }
    for key, value in expected.items():
        assert env.get(key) == value, key
    assert "DISK_1_NAME" not in env           # unnamed disk: left out, as Ganeti does
    assert "INSTANCE_REINSTALL" not in env and "OLD_INSTANCE_NAME" not in env
    assert env["PATH"] == osinterface.SCRIPT_PATH
    assert all(isinstance(v, str) for v in env.values())

    routed = make_inst("noop", nics=[{"mac": "aa:00:00:00:00:01", "mode": "routed", "link": "100"}])
    env = osinterface.environment("create", routed, [], reinstall=True)
    assert env["NIC_0_MODE"] == "routed" and env["NIC_0_LINK"] == "100"
    assert "NIC_0_BRIDGE" not in env and "NIC_0_IP" not in env
    assert env["INSTANCE_REINSTALL"] == "1" and env["DISK_COUNT"] == "0"

    env = osinterface.environment("export", inst, disks, disk_index=1)
    assert env["EXPORT_INDEX"] == "1"
    assert env["EXPORT_DEVICE"] == env["EXPORT_DISK_PATH"] == disks[1]["path"]
    env = osinterface.environment("import", inst, disks, disk_index=0)
    assert env["IMPORT_INDEX"] == "0" and env["IMPORT_DEVICE"] == disks[0]["path"]
    env = osinterface.environment("rename", inst, disks, old_name="old.example.com",
                                  extra={"GENET_X": 1})
    assert env["OLD_INSTANCE_NAME"] == "old.example.com" and env["GENET_X"] == "1"
    with pytest.raises(OsError):
        osinterface.environment("export", inst, disks, disk_index=5)


# --- running scripts --------------------------------------------------------------------------


def test_noop_create_export_import(tmp_path, node_root):
    disks = make_disks(tmp_path, ["raw", "qcow2"])
    inst = make_inst("noop")
    before = [read_raw(d, 4096) for d in disks]
    result = osinterface.create(inst, disks)
    assert result.log_path.parent == node_root / "var/log/genet/os"
    assert result.log_path.name.startswith("create-inst1.example.com-")
    assert "noop: nothing to install on 2 disk(s)" in result.log_path.read_text()
    assert [read_raw(d, 4096) for d in disks] == before
    with open(tmp_path / "dump", "wb") as f:
        res = osinterface.export_disk(inst, disks, 0, f)
    assert (tmp_path / "dump").stat().st_size == 0 and res.export_size == 0
    with open(tmp_path / "dump", "rb") as f:
        osinterface.import_disk(inst, disks, 1, f)


def test_environment_is_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("GENET_LEAK_CHECK", "secret")
    base = tmp_path / "os"
    make_os(base, "dump", {"create": "env | sort\n"})
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(base))
    result = osinterface.create(make_inst("dump"), [])
    text = result.log_path.read_text()
    assert "INSTANCE_NAME=inst1.example.com" in text
    assert "GENET_LEAK_CHECK" not in text
    assert f"PWD={base / 'dump'}" in text


def test_rename_passes_old_name(tmp_path, monkeypatch):
    base = tmp_path / "os"
    make_os(base, "renamer", {"rename": 'echo "renamed from $OLD_INSTANCE_NAME to $INSTANCE_NAME"\n'})
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(base))
    result = osinterface.rename(make_inst("renamer", name="new.example.com"), [], "old.example.com")
    assert result.log_path.name.startswith("rename-new.example.com-")
    assert "renamed from old.example.com to new.example.com" in result.log_path.read_text()
    # the bundled OSes accept a rename too
    osinterface.rename(make_inst("noop", name="new.example.com"), [], "old.example.com")


def test_failing_script_reports_log_tail(tmp_path, monkeypatch):
    base = tmp_path / "os"
    script = 'for i in $(seq 1 40); do echo "progress line $i"; done\necho "disk full, giving up" >&2\nexit 3\n'
    make_os(base, "broken", {"create": script})
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(base))
    with pytest.raises(OsError) as info:
        osinterface.create(make_inst("broken"), [])
    message = str(info.value)
    assert "exit code 3" in message and "disk full, giving up" in message
    assert "progress line 40" in message and "progress line 5\n" not in message
    assert isinstance(info.value, osinterface.errors.OpExecError)
    logs = list((paths.log_dir() / "os").glob("create-inst1.example.com-*.log"))
    assert len(logs) == 1 and str(logs[0]) in message


def test_script_timeout_kills_it(tmp_path, monkeypatch):
    base = tmp_path / "os"
    make_os(base, "slow", {"create": "echo started\nsleep 30 &\nwait\n"})
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(base))
    start = time.monotonic()
    with pytest.raises(OsError, match="timed out after 1 s") as info:
        osinterface.create(make_inst("slow"), [], timeout=1)
    assert time.monotonic() - start < 10
    assert "started" in str(info.value)


def test_qcow2_needs_an_os_that_handles_it(tmp_path, monkeypatch):
    base = tmp_path / "os"
    make_os(base, "rawonly")
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(base))
    disks = make_disks(tmp_path, ["raw", "qcow2"])
    with pytest.raises(OsError, match="OS scripts need raw disks"):
        osinterface.create(make_inst("rawonly"), disks)
    osinterface.create(make_inst("rawonly"), disks[:1])      # raw only: fine


def test_verify_parameters(tmp_path, guest):
    image = str(guest / "disk.raw")
    assert osinterface.verify_parameters("image", {"image": image, "cloud_init": "true"}) is not None
    assert osinterface.validate("noop", {})
    with pytest.raises(OsError, match="does not support the parameter"):
        osinterface.verify_parameters("image", {"image": image, "colour": "blue"})
    with pytest.raises(OsError, match="not a boolean"):
        osinterface.verify_parameters("image", {"image": image, "cloud_init": "perhaps"})
    with pytest.raises(OsError, match="'image' is not set"):
        osinterface.verify_parameters("image", {})
    with pytest.raises(OsError, match="does not look like an SSH public key"):
        osinterface.verify_parameters("image", {"image": image, "ssh_keys": "hello"})


# --- the image OS -----------------------------------------------------------------------------


@pytest.mark.parametrize("disk_format", ["raw", "qcow2"])
@pytest.mark.parametrize("image_format", ["raw", "qcow2"])
def test_image_create_writes_the_test_image(tmp_path, guest, disk_format, image_format):
    disks = make_disks(tmp_path, [disk_format])
    inst = make_inst("image", osparams={"image": str(guest / f"disk.{image_format}")})
    start = time.monotonic()
    result = osinterface.create(inst, disks)
    elapsed = time.monotonic() - start
    assert elapsed < 30, f"image deploy took {elapsed:.1f} s"
    assert read_raw(disks[0], len(HEADER)) == HEADER
    assert "installed" in result.log_path.read_text()


def test_image_by_name_from_the_store(tmp_path, guest, node_root, monkeypatch):
    store = node_root / "srv/genet/images"
    store.mkdir(parents=True)
    shutil.copy(guest / "disk.qcow2", store / "tiny.qcow2")
    disks = make_disks(tmp_path, ["raw"])
    osinterface.create(make_inst("image", osparams={"image": "tiny"}), disks)
    assert read_raw(disks[0], len(HEADER)) == HEADER
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(guest / "disk.raw", other / "other.raw")
    monkeypatch.setenv("GENET_IMAGE_STORE", str(other))
    disks = make_disks(tmp_path / "b", ["qcow2"])
    osinterface.create(make_inst("image", osparams={"image": "other.raw"}), disks)
    assert read_raw(disks[0], len(HEADER)) == HEADER


def test_unknown_image_is_named(tmp_path):
    disks = make_disks(tmp_path, ["raw"])
    with pytest.raises(OsError, match="no-such-image-42"):
        osinterface.create(make_inst("image", osparams={"image": "no-such-image-42"}), disks)
    with pytest.raises(OsError, match="/nonexistent/disk.img"):
        osinterface.create(make_inst("image", osparams={"image": "/nonexistent/disk.img"}), disks)


def test_image_too_large_for_disk(tmp_path, guest):
    disks = make_disks(tmp_path, ["raw"], size_mib=16)
    with pytest.raises(OsError, match="does not fit"):
        osinterface.create(make_inst("image", osparams={"image": str(guest / "disk.raw")}), disks)


def _fat_files(image: bytes) -> dict[str, bytes]:
    """Read the root directory of a FAT12/16 image (long names, contiguous or chained files)."""
    bps = int.from_bytes(image[11:13], "little")
    spc = image[13]
    reserved = int.from_bytes(image[14:16], "little")
    nfats = image[16]
    root_entries = int.from_bytes(image[17:19], "little")
    fat_sectors = int.from_bytes(image[22:24], "little")
    fat = image[reserved * bps:(reserved + fat_sectors) * bps]
    root_start = (reserved + nfats * fat_sectors) * bps
    data_start = root_start + root_entries * 32
    files, lfn = {}, []
    for i in range(root_entries):
        entry = image[root_start + 32 * i:root_start + 32 * (i + 1)]
        if entry[0] == 0:
            break
        if entry[11] == 0x0F:
            chars = entry[1:11] + entry[14:26] + entry[28:32]
            lfn.insert(0, chars.decode("utf-16-le").split("\x00")[0].replace("\uffff", ""))
            continue
        if entry[11] & 0x08:
            lfn = []
            continue
        name = "".join(lfn) or entry[:8].decode().strip()
        lfn = []
        cluster, size = int.from_bytes(entry[26:28], "little"), int.from_bytes(entry[28:32], "little")
        data = b""
        while 2 <= cluster < 0xFF8:
            off = data_start + (cluster - 2) * spc * bps
            data += image[off:off + spc * bps]
            pair = int.from_bytes(fat[cluster * 3 // 2:cluster * 3 // 2 + 2], "little")
            cluster = pair >> 4 if cluster % 2 else pair & 0xFFF
        files[name] = data[:size]
    return files


@pytest.mark.parametrize("seed_format", ["raw", "qcow2"])
def test_image_cloud_init_seed(tmp_path, guest, seed_format):
    disks = make_disks(tmp_path, ["raw", seed_format], size_mib=64)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGenetTestKeyOnly test@genet"
    inst = make_inst("image", osparams={"image": str(guest / "disk.raw"), "cloud_init": "true",
                                         "ssh_keys": key, "hostname": "web1.example.com"})
    # the built-in FAT writer works on every node: force it so this test does not depend on dosfstools
    result = osinterface.create(inst, disks, extra={"GENET_CIDATA_BUILDER": "builtin"})
    assert read_raw(disks[0], len(HEADER)) == HEADER
    seed = read_raw(disks[1], 4 * 1024 * 1024)
    assert seed[43:54] == b"cidata     " and seed[54:62] == b"FAT12   " and seed[510:512] == b"\x55\xaa"
    files = _fat_files(seed)
    assert set(files) == {"meta-data", "user-data", "network-config"}
    assert b'instance-id: "0b6f4c36-6a8e-4f0c-9d0e-3d6b8f1e2a10"' in files["meta-data"]
    assert b'local-hostname: "web1.example.com"' in files["meta-data"]
    assert files["user-data"].startswith(b"#cloud-config\n")
    assert key.encode() in files["user-data"]
    assert b'macaddress: "aa:00:00:12:34:56"' in files["network-config"]
    assert b'"192.0.2.10/24"' in files["network-config"]
    assert "NoCloud seed" in result.log_path.read_text()
    if shutil.which("fsck.fat"):        # dosfstools present: it must find the filesystem clean
        raw = tmp_path / "seed.raw"
        raw.write_bytes(seed)
        subprocess.run(["fsck.fat", "-n", str(raw)], check=True, capture_output=True)


def test_image_cloud_init_with_local_tools(tmp_path, guest):
    """Whatever builder this node has (mkfs.vfat+mcopy, an ISO tool, or the built-in one)."""
    disks = make_disks(tmp_path, ["qcow2", "raw"])
    inst = make_inst("image", osparams={"image": str(guest / "disk.qcow2"), "cloud_init": "yes"})
    result = osinterface.create(inst, disks)
    seed = read_raw(disks[1], 1024 * 1024)
    assert b"cidata" in seed[:64 * 1024] or b"CIDATA" in seed[:64 * 1024]
    assert "NoCloud seed" in result.log_path.read_text()


def test_image_cloud_init_without_second_disk_warns(tmp_path, guest):
    disks = make_disks(tmp_path, ["raw"])
    inst = make_inst("image", osparams={"image": str(guest / "disk.raw"), "cloud_init": "true"})
    result = osinterface.create(inst, disks)
    assert "no disk 1 for the seed: skipped" in result.log_path.read_text()
    assert read_raw(disks[0], len(HEADER)) == HEADER


@pytest.mark.parametrize("disk_format", ["raw", "qcow2"])
def test_image_export_import_round_trip(tmp_path, guest, disk_format):
    src = make_disks(tmp_path / "src", [disk_format])
    dst = make_disks(tmp_path / "dst", [disk_format])
    inst = make_inst("image", osparams={"image": str(guest / "disk.raw")})
    osinterface.create(inst, src)
    dump = tmp_path / "disk0.dump"
    with open(dump, "wb") as f:
        result = osinterface.export_disk(inst, src, 0, f)
    assert result.export_size == 64 * 1024 * 1024 == dump.stat().st_size
    assert dump.read_bytes()[:len(HEADER)] == HEADER
    with open(dump, "rb") as f:
        osinterface.import_disk(inst, dst, 0, f)
    assert read_raw(dst[0], len(HEADER)) == HEADER
