"""gnt-cluster's administration commands as a user types them on a loopback cluster: version,
master-ping, search-tags, rename, command, copyfile, repair-disk-sizes and renew-crypto (the
cluster certificate renewed on every node over real TLS while the master keeps reaching them)."""
import os
import socket
import ssl
import time

import pytest

from genet import ssl_utils

SEPARATOR = "-" * 48


def test_version_master_ping_search_tags_and_rename(cluster):
    out = cluster.run("node1", "gnt-cluster", "version").stdout.splitlines()
    assert [line.split(":")[0] for line in out] == ["Software version", "Internode protocol", "Configuration format",
                                                    "OS api version", "Export interface", "VCS version"]
    assert cluster.run("node1", "gnt-cluster", "master-ping").returncode == 0
    assert cluster.run("node2", "gnt-cluster", "master-ping", check=False).returncode == 1
    cluster.run("node1", "gnt-cluster", "add-tags", "prod-cluster")
    cluster.run("node1", "gnt-node", "add-tags", "node3", "rack:prod")
    assert cluster.run("node1", "gnt-cluster", "search-tags", "prod").stdout.splitlines() == [
        "/cluster prod-cluster", "/nodes/node3 rack:prod"]
    assert cluster.run("node1", "gnt-cluster", "search-tags", "^nothing", check=False).returncode == 1
    proc = cluster.run("node1", "gnt-cluster", "search-tags", "(", check=False)
    assert proc.returncode == 1 and "Invalid search pattern" in proc.stderr
    out = cluster.run("node1", "gnt-cluster", "rename", "-f", "renamed.example.com").stdout
    assert f"Cluster renamed from '{cluster.CLUSTER_NAME}' to 'renamed.example.com'" in out
    for node in cluster.names:
        assert (cluster.root(node) / "var/lib/genet/ssconf_cluster_name").read_text().strip() == "renamed.example.com"


def test_command_and_copyfile_reach_the_nodes_over_noded(cluster, tmp_path):
    out = cluster.run("node1", "gnt-cluster", "command", "echo", "$GENET_HOSTNAME;", "exit", "3").stdout
    # the output as the command wrote it, its last newline included (as Ganeti's)
    assert out.splitlines() == [line for node in ("node2", "node3", "node1")       # the master last
                                for line in (SEPARATOR, f"node: {node}", node, "", "return code = 3")]
    out = cluster.run("node1", "gnt-cluster", "command", "-M", "-n", "node3", "echo", "a;", "echo", "b").stdout
    assert out.splitlines() == [SEPARATOR, "node3: a", "node3: b", "return code = 0"]
    assert cluster.run("node1", "gnt-cluster", "command", "--failure-only", "true").stdout == ""
    source = tmp_path / "motd"
    source.write_text("hello\n")
    os.chmod(source, 0o640)
    cluster.run("node1", "gnt-cluster", "copyfile", "-n", "node2", str(source))
    copied = cluster.root("node2") / str(source).lstrip("/")
    assert copied.read_text() == "hello\n" and oct(copied.stat().st_mode & 0o777) == "0o640"
    assert not (cluster.root("node3") / str(source).lstrip("/")).exists()
    proc = cluster.run("node1", "gnt-cluster", "copyfile", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 1 and "No such filename" in proc.stderr


def test_repair_disk_sizes_corrects_a_disk_that_grew(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M", "--no-start",
                "-o", "noop", "web1")
    [disk] = (cluster.root("node2") / "srv/genet/file-storage/web1").iterdir()
    os.truncate(disk, 6 * 1024 * 1024)
    out = cluster.run("node1", "gnt-cluster", "repair-disk-sizes").stdout
    assert "Disk 0 of instance web1 has mismatched size, correcting: recorded 4, actual 6" in out
    assert cluster.run("node1", "gnt-instance", "list", "--no-headers", "-o", "disk.size/0",
                       "web1").stdout.strip() == "6M"
    assert "mismatched" not in cluster.run("node1", "gnt-cluster", "repair-disk-sizes", "web1").stdout


def fingerprint(cluster, node):
    return ssl_utils.cert_info(cluster.root(node) / "var/lib/genet/server.pem")["fingerprint"]


def test_renew_crypto_replaces_the_cluster_certificate_everywhere_without_losing_a_node(cluster, tmp_path):
    """When the cluster certificate is renewed, every node presents the same new one, trusts only it,
    and the running master still reaches every node (verify passes, a delay runs on each)."""
    before = fingerprint(cluster, "node1")
    old_cert = tmp_path / "old.pem"
    old_cert.write_bytes((cluster.root("node1") / "var/lib/genet/server.pem").read_bytes())
    out = cluster.run("node1", "gnt-cluster", "renew-crypto", "-f", "--new-cluster-certificate",
                      "--new-rapi-certificate", "--new-spice-certificate").stdout
    assert "All requested certificates and keys have been replaced." in out
    after = {fingerprint(cluster, node) for node in cluster.names}
    assert len(after) == 1 and before not in after
    for node in cluster.names:
        data = cluster.root(node) / "var/lib/genet"
        assert sorted(p.name for p in data.glob("server.pem*")) == ["server.pem"]
        assert (data / "rapi.pem").exists() and (data / "spice.pem").exists() and (data / "spice-ca.pem").exists()
    cluster.run("node1", "gnt-cluster", "verify")
    cluster.run("node1", "gnt-debug", "delay", "-n", "node2", "-n", "node3", "0.1")
    # a peer still holding only the old certificate is no longer let in
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with socket.create_connection((cluster.address("node2"), cluster.port), timeout=10) as raw:
            with ssl_utils.client_context(old_cert).wrap_socket(raw) as tls:
                tls.sendall(b"POST /version HTTP/1.0\r\ncontent-length: 2\r\n\r\n[]")
                assert tls.recv(1)
    rapi_pem = (cluster.root("node1") / "var/lib/genet/rapi.pem").read_text()
    deadline = time.time() + 10
    while time.time() < deadline:     # the RAPI presents its new certificate from the next connection
        served = ssl.get_server_certificate((cluster.address("node1"), 5080))
        if served.strip() in rapi_pem:
            break
        time.sleep(0.2)
    assert served.strip() in rapi_pem


def test_renew_crypto_installs_a_cluster_domain_secret_on_every_node(cluster, tmp_path):
    """When a new cluster domain secret is made, or one is given in a file, every node holds it."""
    def secrets() -> set[str]:
        return {(cluster.root(node) / "var/lib/genet/cluster-domain-secret").read_text() for node in cluster.names}
    made = (cluster.root("node1") / "var/lib/genet/cluster-domain-secret").read_text()     # init's
    cluster.run("node1", "gnt-cluster", "renew-crypto", "-f", "--new-cluster-domain-secret")
    (renewed,) = secrets()
    assert renewed != made and len(renewed.strip()) == 40
    given = tmp_path / "cds"
    given.write_text("shared-with-the-other-cluster\n")
    cluster.run("node1", "gnt-cluster", "renew-crypto", "-f", "--cluster-domain-secret", str(given))
    assert secrets() == {"shared-with-the-other-cluster\n"}


def test_renew_crypto_refuses_what_genet_has_not_got(cluster):
    for flag in ("--new-confd-hmac-key", "--new-ssh-keys"):
        proc = cluster.run("node1", "gnt-cluster", "renew-crypto", "-f", flag, check=False)
        assert proc.returncode == 1 and f"{flag} is not supported" in proc.stderr
    proc = cluster.run("node1", "gnt-cluster", "renew-crypto", "--new-rapi-certificate", "--rapi-certificate",
                       "/dev/null", check=False)
    assert proc.returncode == 1 and "Only one of the --new-rapi-certificate" in proc.stderr


def test_optional_feature_settings_as_a_user_types_them(cluster):
    """When the compression tools, helper images, communication network, user shutdown and data
    collectors are set with modify, each changes what genet does or is refused naming why."""
    from ganeti_info import parsed
    gnt = lambda *argv, check=True: cluster.run("node1", *argv, check=check)
    gnt("gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M", "--no-start", "-o", "noop", "w1")
    [disk] = (cluster.root("node2") / "srv/genet/file-storage/w1").iterdir()
    data = os.urandom(1 << 20) * 2
    with open(disk, "r+b") as f:
        f.write(data)
    proc = gnt("gnt-instance", "move", "-f", "-n", "node3", "--compress", "lzop", "w1", check=False)
    assert proc.returncode == 1 and "Compression tool not allowed, tools allowed are [gzip, gzip-fast, gzip-slow]" \
        in proc.stderr
    gnt("gnt-instance", "move", "-f", "-n", "node3", "--compress", "gzip-slow", "w1")
    [moved] = (cluster.root("node3") / "srv/genet/file-storage/w1").iterdir()
    assert moved.read_bytes()[:len(data)] == data
    gnt("gnt-cluster", "modify", "--compression-tools", "gzip")
    proc = gnt("gnt-backup", "export", "-n", "node1", "--transport-compression", "gzip-fast", "w1", check=False)
    assert proc.returncode == 1 and "tools allowed are [gzip]" in proc.stderr
    gnt("gnt-backup", "export", "-n", "node1", "--transport-compression", "gzip", "w1")
    assert (cluster.root("node1") / "var/lib/genet/export/w1/disk0.raw").read_bytes()[:len(data)] == data

    proc = gnt("gnt-cluster", "modify", "--install-image", "images/install.img", check=False)
    assert proc.returncode == 1 and "Install image must be an absolute path or a URL" in proc.stderr
    out = gnt("gnt-cluster", "modify", "--instance-communication-network", "comm", "--install-image",
              "/srv/install.img", "--user-shutdown", "yes", "--enabled-data-collectors", "lv=false",
              "--data-collector-interval", "cpu-avg-load=2").stdout
    assert "Waiting for job" in out
    assert gnt("gnt-network", "list", "--no-headers", "-o", "name,network,mac_prefix", "comm").stdout.split() == \
        ["comm", "169.254.0.0/16", "52:54:00"]
    info = parsed(gnt("gnt-cluster", "info").stdout)
    params = info["Cluster parameters"]
    assert (params["instance communication network"], params["install image"], params["enabled user shutdown"]) \
        == ("comm", "/srv/install.img", True)
    assert params["compression tools"] == ["gzip"]
    assert info["Data collectors"]["lv"]["active"] is False
    assert info["Data collectors"]["cpu-avg-load"] == {"active": True, "interval": "2.000s"}
    for node in cluster.names:
        assert (cluster.root(node) / "var/lib/genet/ssconf_enabled_user_shutdown").read_text().strip() == "True"
    proc = gnt("gnt-instance", "add", "-t", "diskless", "-n", "node1", "--communication", "--no-start", "c1",
               check=False)
    assert proc.returncode == 1 and "genet cannot serve instance communication" in proc.stderr


def test_cluster_settings_as_a_user_types_them(cluster):
    """When the uid pool, default allocator, disk wiping, reserved volumes and DRBD helper are
    set with modify, info, RAPI's /2/info and the nodes' ssconf show them and genet acts on them;
    --max-tracked-jobs is refused naming why."""
    from ganeti_info import parsed
    gnt = lambda *argv, check=True: cluster.run("node1", *argv, check=check)
    gnt("gnt-cluster", "modify", "--uid-pool", "5000-5009,5020")
    gnt("gnt-cluster", "modify", "--add-uids", "6000", "--remove-uids", "5020")
    params = parsed(gnt("gnt-cluster", "info").stdout)["Cluster parameters"]
    assert params["uid pool"] == "5000-5009, 6000"
    assert (cluster.root("node3") / "var/lib/genet/ssconf_uid_pool").read_text() == "5000-5009\n6000\n"
    proc = gnt("gnt-cluster", "modify", "--remove-uids", "7000", check=False)
    assert proc.returncode == 1 and "not found in the current user-id pool: 7000" in proc.stderr
    gnt("gnt-cluster", "modify", "--uid-pool=")
    assert cluster.client().call("QueryClusterInfo")["uid_pool"] == []

    proc = gnt("gnt-cluster", "modify", "--max-tracked-jobs", "30", check=False)
    assert proc.returncode == 1 and "tracks no job files" in proc.stderr

    proc = gnt("gnt-cluster", "modify", "-I", "dumb", check=False)
    assert proc.returncode == 1 and "iallocator 'dumb' is not available" in proc.stderr
    gnt("gnt-cluster", "modify", "-I", "", "--default-iallocator-params", "static-kvm-node-memory=0")
    add = ("gnt-instance", "add", "-t", "file", "--disk", "0:size=4M", "--no-start", "-o", "noop")
    proc = gnt(*add, "w1", check=False)
    assert proc.returncode == 1 and "No iallocator or node given and no cluster-wide default iallocator" \
        in proc.stderr
    gnt("gnt-cluster", "modify", "--default-iallocator", "hail", "--prealloc-wipe-disks", "yes")
    out = gnt(*add, "w1").stdout
    node = gnt("gnt-instance", "list", "--no-headers", "-o", "pnode", "w1").stdout.strip()
    assert f"wiping disk 0 of w1 on {node}" in out
    [disk] = (cluster.root(node) / "srv/genet/file-storage/w1").iterdir()
    assert disk.stat().st_blocks * 512 >= 4 << 20                       # written, not sparse

    gnt("gnt-cluster", "modify", "--reserved-lvs", "xenvg/backup.*,xenvg/swap", "--drbd-usermode-helper",
        "/bin/true", "--hypervisor-state", "fake:mem_total=4096")
    info = cluster.client().call("QueryClusterInfo")
    assert (info["default_iallocator"], info["default_iallocator_params"], info["prealloc_wipe_disks"],
            info["reserved_lvs"], info["drbd_usermode_helper"]) == (
        "hail", {"static-kvm-node-memory": "0"}, True, ["xenvg/backup.*", "xenvg/swap"], "/bin/true")
    params = parsed(gnt("gnt-cluster", "info").stdout)["Cluster parameters"]
    assert params["lvm reserved volumes"] == "xenvg/backup.*, xenvg/swap"
    gnt("gnt-cluster", "modify", "--reserved-lvs=")
    assert parsed(gnt("gnt-cluster", "info").stdout)["Cluster parameters"]["lvm reserved volumes"] == "(none)"


def test_init_takes_the_cluster_settings(tmp_path):
    """When a cluster is made with the settings, its first job sets them: info shows them and the
    ssconf has them; an empty DRBD helper is refused before anything is made (drbd is enabled)."""
    from ganeti_info import parsed
    from loopback import LoopbackCluster
    solo = LoopbackCluster(tmp_path, nodes=1)
    try:
        init = ("gnt-cluster", "init", "--noded-port", str(solo.port), f"--shared-file-storage-dir={tmp_path}/shared")
        proc = solo.run("node1", *init, "--drbd-usermode-helper", "", "solo", check=False)
        assert proc.returncode == 1 and "Unsetting the drbd usermode helper while enabling DRBD" in proc.stderr
        assert not (solo.root("node1") / "var/lib/genet/config.data").exists()
        solo.run("node1", *init, "--uid-pool", "5000-5009", "-I", "", "--default-iallocator-params", "a=b",
                 "--maintain-node-health", "yes", "--prealloc-wipe-disks", "yes",
                 "--hypervisor-state", "fake:mem_total=2048", "--disk-state", "lvm-vg:disk_total=100", "solo")
        params = parsed(solo.run("node1", "gnt-cluster", "info").stdout)["Cluster parameters"]
        assert (params["uid pool"], params["default instance allocator"], params["maintenance of node health"],
                params["preallocation wipe disks"], params["drbd usermode helper"]) == (
            "5000-5009", None, True, True, "/bin/true")          # (an empty value reads as None)
        assert (solo.root("node1") / "var/lib/genet/ssconf_uid_pool").read_text() == "5000-5009\n"
        proc = solo.run("node1", "gnt-instance", "add", "-t", "file", "--disk", "0:size=4M", "--no-start", "-o",
                        "noop", "f1", check=False)
        assert proc.returncode == 1 and "no cluster-wide default iallocator" in proc.stderr
    finally:
        solo.stop()
