"""gnt-cluster's administration units run in-process (conftest.Cluster): tag search, rename,
disk size repair and the renewal of the cluster, RAPI and SPICE certificates."""
from __future__ import annotations

import os

import pytest

from genet import errors, paths, ssl_utils
from genet.opcodes import (OpClusterRename, OpClusterRenewCrypto, OpClusterRepairDiskSizes, OpInstanceCreate,
                           OpTagsSearch, OpTagsSet)


def create(cluster, name="web1", node="node2", size=8):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template="file", pnode=node, os_type="noop",
                                 disks=[{"size": size}], start=False, beparams={"memory": 128}))


def test_search_tags_finds_matching_tags_on_every_kind_of_object_with_ganeti_paths(cluster):
    """When tags match the pattern anywhere, each is returned with Ganeti's path of its object."""
    create(cluster)
    cluster.run(OpTagsSet(kind="cluster", tags=["prod-cluster"]))
    cluster.run(OpTagsSet(kind="instance", name="web1", tags=["prod", "web"]))
    cluster.run(OpTagsSet(kind="node", name="node3", tags=["rack:prod"]))
    cluster.run(OpTagsSet(kind="nodegroup", name="default", tags=["other"]))
    assert sorted(cluster.run(OpTagsSearch(pattern="prod"))) == [
        ["/cluster", "prod-cluster"], ["/instances/web1", "prod"], ["/nodes/node3", "rack:prod"]]
    assert cluster.run(OpTagsSearch(pattern="^oth")) == [["/nodegroup/default", "other"]]
    assert cluster.run(OpTagsSearch(pattern="nothing")) == []


def test_search_tags_refuses_an_invalid_regular_expression(cluster):
    """When the pattern does not compile, the search is refused naming it."""
    cluster.refused(OpTagsSearch(pattern="(unclosed"), "Invalid search pattern '\\(unclosed'", "wrong_input")


def test_rename_changes_the_name_in_the_config_and_every_nodes_ssconf(cluster):
    """When the cluster is renamed, the config and each node's ssconf carry the new name."""
    assert cluster.run(OpClusterRename(name="c2")) == "c2"
    assert cluster.data().cluster["cluster_name"] == "c2"
    for node in cluster.nodes.values():
        assert (node.root / "var/lib/genet/ssconf_cluster_name").read_text().strip() == "c2"
    assert any("The master IP is not activated: no master netdev is configured" in line for line in cluster.log)


def test_rename_to_the_same_name_is_refused(cluster):
    cluster.refused(OpClusterRename(name="c1"), "Neither the name nor the IP address of the cluster has changed",
                    "wrong_input")


def test_repair_disk_sizes_records_the_size_the_primary_reports(cluster):
    """When a disk file grew behind genet's back, its recorded size is corrected and reported."""
    create(cluster, size=8)
    create(cluster, name="db1", node="node3", size=4)
    disk = cluster.nodes["node2"].root / "srv/genet/file-storage/web1" / cluster.nodes["node2"].files("web1")[0]
    os.truncate(disk, 12 * 1024 * 1024)
    assert cluster.run(OpClusterRepairDiskSizes()) == [["web1", 0, "size", 12]]
    assert cluster.instance("web1")["disks"][0]["size"] == 12
    assert cluster.instance("db1")["disks"][0]["size"] == 4
    assert "Disk 0 of instance web1 has mismatched size, correcting: recorded 8, actual 12" in cluster.log
    assert cluster.run(OpClusterRepairDiskSizes(instances=["web1"])) == []


def test_repair_disk_sizes_skips_an_unreachable_primary_with_a_warning(cluster):
    create(cluster)
    cluster.nodes["node2"].reachable = False
    assert cluster.run(OpClusterRepairDiskSizes(instances=["web1"])) == []
    assert "WARNING: Failure in blockdev_getdimensions call to node node2, ignoring" in cluster.log


def test_repair_disk_sizes_refuses_an_unknown_instance(cluster):
    cluster.refused(OpClusterRepairDiskSizes(instances=["ghost"]), "ghost", "unknown_entity")


def fingerprints(cluster) -> dict[str, str]:
    out = {}
    for name, node in cluster.nodes.items():
        with node.acting():
            out[name] = ssl_utils.cert_info(paths.cluster_cert())["fingerprint"]
            assert ssl_utils.trusted(paths.cluster_cert()) == [paths.cluster_cert()]
    return out


def test_renew_crypto_gives_every_node_the_same_new_cluster_certificate_and_retires_the_old(cluster):
    """When the cluster certificate is renewed, each node ends with the same new one, trusting
    only it, and the master still reaches every node."""
    before = fingerprints(cluster)
    cluster.run(OpClusterRenewCrypto(node_certificates=True))
    after = fingerprints(cluster)
    assert len(set(after.values())) == 1 and set(after.values()) != set(before.values())
    assert [line for line in cluster.log if line.startswith(("Staging", "Switching", "Retiring"))] == [
        "Staging the new cluster certificate on every node (trusted beside the current one)",
        "Switching every node to the new cluster certificate (the old one stays trusted)",
        "Retiring the old cluster certificate"]


def test_renew_crypto_that_cannot_stage_everywhere_changes_no_certificate(cluster):
    """When a node cannot take the new certificate, none switches and none keeps it staged."""
    before = fingerprints(cluster)
    cluster.nodes["node3"].reachable = False
    with pytest.raises(errors.OpExecError, match="cannot stage the new cluster certificate on node3"):
        cluster.run(OpClusterRenewCrypto(node_certificates=True))
    cluster.nodes["node3"].reachable = True
    assert fingerprints(cluster) == before


def test_renew_crypto_makes_rapi_and_spice_certificates_on_every_node(cluster):
    cluster.run(OpClusterRenewCrypto(new_rapi_certificate=True, new_spice_certificate=True))
    for node in cluster.nodes.values():
        folder = node.root / "var/lib/genet"
        ssl_utils.check_pem((folder / "rapi.pem").read_text())
        spice = (folder / "spice.pem").read_text()
        assert spice.endswith((folder / "spice-ca.pem").read_text())
        ssl_utils.check_pem((folder / "spice-ca.pem").read_text(), need_key=False)


def test_renew_crypto_installs_a_given_rapi_certificate_and_refuses_a_broken_one(cluster, tmp_path):
    path = tmp_path / "mine.pem"
    ssl_utils.generate_cluster_cert(path, "mine", common_name="rapi.example.com")
    cluster.run(OpClusterRenewCrypto(rapi_certificate=path.read_text()))
    assert (cluster.nodes["node3"].root / "var/lib/genet/rapi.pem").read_text() == path.read_text()
    certificate_only = path.read_text()[path.read_text().index("-----BEGIN CERTIFICATE"):]
    cluster.refused(OpClusterRenewCrypto(rapi_certificate=certificate_only), "no usable private key")


@pytest.mark.parametrize("params, match", [
    ({"new_rapi_certificate": True, "rapi_certificate": "x"}, "Only one of --new-rapi-certificate"),
    ({"new_spice_certificate": True, "spice_certificate": "x", "spice_ca_certificate": "y"},
     "Only one of --new-spice-certificate"),
    ({"spice_certificate": "x"}, "Both --spice-certificate and --spice-ca-certificate"),
    ({"new_cluster_domain_secret": True, "cluster_domain_secret": "x"}, "Only one of --new-cluster-domain-secret"),
    ({"cluster_domain_secret": "one\ntwo\n"}, "one line of text, not 2"),
])
def test_renew_crypto_refuses_conflicting_options(cluster, params, match):
    cluster.refused(OpClusterRenewCrypto(**params), match, "wrong_input")


def domain_secrets(cluster) -> set[str]:
    return {(node.root / "var/lib/genet/cluster-domain-secret").read_text() for node in cluster.nodes.values()}


def test_renew_crypto_gives_every_node_a_new_or_the_given_cluster_domain_secret(cluster):
    """When a new cluster domain secret is asked for, every node holds the same new one; when one is
    given (a file's line), every node holds that one, as its single line."""
    cluster.run(OpClusterRenewCrypto(new_cluster_domain_secret=True))
    (made,) = domain_secrets(cluster)
    assert len(made.strip()) == 40
    cluster.run(OpClusterRenewCrypto(new_cluster_domain_secret=True))
    assert domain_secrets(cluster) != {made}
    cluster.run(OpClusterRenewCrypto(cluster_domain_secret="shared-by-two-clusters\n"))
    assert domain_secrets(cluster) == {"shared-by-two-clusters\n"}
