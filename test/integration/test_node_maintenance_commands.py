"""gnt-node modify --maintenance on a loopback cluster of real daemons (fake hypervisor,
sharedfile and diskless instances that live-migrate): yes empties the node of its primaries in
one job, no brings it back (issue 16)."""

from ganeti_info import parsed
from test_instances_fake import listing


def gnt(cluster, *args, check=True):
    return cluster.run("node1", *args, check=check)


def node_flags(cluster, node: str) -> list[str]:
    out = gnt(cluster, "gnt-node", "list", "--no-headers", "--separator=|", "-o", "maintenance,drained,role",
              node).stdout
    return out.strip().split("|")


def test_maintenance_empties_a_node_and_no_brings_it_back(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "sharedfile", "-n", "node2", "--disk", "0:size=4M", "-B", "memory=64M",
        "-B", "ha=true,ha_priority=10", "web1")
    gnt(cluster, "gnt-instance", "add", "-t", "diskless", "-n", "node2", "-B", "memory=64M", "web2")
    out = gnt(cluster, "gnt-node", "modify", "--maintenance", "yes", "node2").stdout
    assert out.count("migration done") == 2 and "Node node2 is in maintenance" in out
    assert " - maintenance -> True" in out.splitlines()
    placed = listing(cluster, "name", "pnode", "status", "be/ha", "be/ha_priority")
    assert [row[0] for row in placed] == ["web1", "web2"]
    assert all(row[1] in ("node1", "node3") and row[2] == "running" for row in placed)
    assert placed[0][3:] == ["Y", "10"]
    assert node_flags(cluster, "node2") == ["Y", "Y", "D"]
    [info] = parsed(gnt(cluster, "gnt-node", "info", "node2").stdout)
    assert info["maintenance"] is True and info["primary for instances"] in (None, [])
    proc = gnt(cluster, "gnt-node", "modify", "--maintenance", "yes", "node1", check=False)
    assert proc.returncode == 1 and "the master node 'node1' cannot be put in maintenance" in proc.stderr
    gnt(cluster, "gnt-node", "modify", "--maintenance", "no", "node2")
    assert node_flags(cluster, "node2") == ["N", "N", "C"]
    gnt(cluster, "gnt-instance", "migrate", "-f", "-n", "node2", "web1")
    assert listing(cluster, "name", "pnode")[0] == ["web1", "node2"]
