"""Cluster verify and verify-disks, exports and imports, and node roles, run in-process
(conftest.Cluster)."""
from __future__ import annotations

import os

import pytest

from genet import errors
from genet.opcodes import (OpBackupExport, OpBackupPrepare, OpBackupQuery, OpBackupRemove, OpClusterVerify, OpClusterVerifyDisks,
                           OpInstanceCreate, OpInstanceRemove, OpNodeSetParams)


def create(cluster, name="web1", node="node2", start=True, template="file"):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=node, os_type="noop",
                                 disks=[{"size": 8}] if template != "diskless" else [], start=start,
                                 beparams={"memory": 128}))


def codes(result) -> list[tuple[str, str]]:
    return sorted((entry[0], entry[2]) for entry in result["errors"])


def test_verify_of_a_healthy_cluster_finds_nothing(cluster):
    create(cluster)
    assert cluster.run(OpClusterVerify()) == {"ok": True, "errors": []}


def test_verify_names_an_unreachable_node_and_an_instance_that_does_not_run(cluster):
    create(cluster)
    cluster.nodes["node2"].hv.crash("web1")                 # marked up, not running
    cluster.nodes["node3"].reachable = False
    assert codes(cluster.run(OpClusterVerify())) == [("EINSTANCEDOWN", "web1"), ("ENODEHOOKS", "node3"),
                                                     ("ENODENET", "node3")]    # its hooks could not run (Ganeti's)


def test_verify_names_an_instance_running_where_it_is_not_placed_and_one_nobody_knows(cluster):
    create(cluster, name="db1", node="node3", template="diskless")
    stray = {"name": "db1", "uuid": "u", "hypervisor": "fake", "hvparams": {}, "nics": [], "disks": [],
             "beparams": {"maxmem": 64, "minmem": 64, "vcpus": 1}}
    cluster.nodes["node1"].hv.start(stray)
    cluster.nodes["node2"].hv.start(dict(stray, name="ghost"))
    assert codes(cluster.run(OpClusterVerify())) == [("EINSTANCEWRONGNODE", "db1"), ("ENODEORPHANINSTANCE", "node2")]


def test_verify_disks_looks_at_mirrored_disks_only(cluster):
    create(cluster)
    assert cluster.run(OpClusterVerifyDisks()) == []


def test_export_writes_config_and_image_and_remove_deletes_them(cluster):
    create(cluster)
    cluster.run(OpBackupExport(instance_name="web1", target_node="node3", shutdown_timeout=5))
    assert cluster.run(OpBackupQuery(nodes=[])) == {"node1": [], "node2": [], "node3": ["web1"]}
    export = cluster.nodes["node3"].root / "var/lib/genet/export/web1"
    assert sorted(p.name for p in export.iterdir()) == ["config.ini", "disk0.raw"]
    assert "[instance]" in (export / "config.ini").read_text()
    assert cluster.running()["node2"] == ["web1"]            # started again after the copy
    cluster.run(OpBackupRemove(instance_name="web1"))
    assert not export.exists()


def test_an_export_that_fails_leaves_no_staging_directory_and_restarts_the_instance(cluster):
    create(cluster)
    cluster.nodes["node3"].reachable = False
    with pytest.raises(errors.GenericError, match="node3"):
        cluster.run(OpBackupExport(instance_name="web1", target_node="node3", shutdown_timeout=5))
    cluster.nodes["node3"].reachable = True
    assert not (cluster.nodes["node3"].root / "var/lib/genet/export").exists() or \
        list((cluster.nodes["node3"].root / "var/lib/genet/export").iterdir()) == []
    assert cluster.running()["node2"] == ["web1"]


def test_import_makes_an_instance_from_an_export(cluster):
    create(cluster)
    cluster.run(OpBackupExport(instance_name="web1", target_node="node3", shutdown_timeout=5))
    cluster.run(OpInstanceRemove(instance_name="web1", shutdown_timeout=5))
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node1", mode="import",
                                 src_node="node3", start=False))
    inst = cluster.instance("web1")
    assert inst["primary_node"] == "node1" and [d["size"] for d in inst["disks"]] == [8]
    assert len(cluster.nodes["node1"].files("web1")) == 1


def test_an_offline_node_is_not_asked_and_the_master_cannot_go_offline(cluster):
    create(cluster, name="db1", node="node3", template="diskless", start=False)
    cluster.run(OpNodeSetParams(node_name="node3", offline=True))
    assert cluster.data()["nodes"]["node3"]["offline"] is True
    calls = len(cluster.transport.calls)
    cluster.run(OpClusterVerify())
    assert all(node != "node3" for node, _ in cluster.transport.calls[calls:])
    cluster.refused(OpNodeSetParams(node_name="node1", offline=True), "master")


# --- preparing a remote export (Ganeti's OpBackupPrepare) ---------------------------------------

def ganeti_hmac(secret: str, message: str, salt: str) -> str:
    """Ganeti's Sha1Hmac, computed here on its own to check genet's."""
    import hashlib
    import hmac
    return hmac.new(secret.encode(), (salt + message).encode(), hashlib.sha1).hexdigest()


def test_prepare_for_a_remote_export_answers_the_handshake_and_a_signed_transfer_key(cluster):
    """When a remote export is prepared, the answer is Ganeti's: the handshake made with the cluster
    domain secret, the name of a key made on the primary node (its directory holds the key and the
    certificate) vouched for with the secret, and that certificate signed with it."""
    create(cluster)
    answer = cluster.run(OpBackupPrepare(instance_name="web1", mode="remote"))
    secret = (cluster.nodes["node1"].root / "var/lib/genet/cluster-domain-secret").read_text().strip()
    assert len(secret) == 40
    version, digest, salt = answer["handshake"]
    assert version == 0 and len(salt) == 16 and digest == ganeti_hmac(secret, "0:Hi, I'm Ganeti", salt)
    name, digest, salt = answer["x509_key_name"]
    assert digest == ganeti_hmac(secret, name, salt)
    keys = cluster.nodes["node2"].root / "var/run/genet/crypto" / name
    assert sorted(p.name for p in keys.iterdir()) == ["cert", "key"]
    header, pem = answer["x509_ca"].split("\n\n", 1)
    salt, digest = header.removeprefix("X-Ganeti-Signature: ").split("/")
    assert pem == (keys / "cert").read_text() and digest == ganeti_hmac(secret, pem, salt)


def test_a_prepared_key_goes_once_its_certificate_has_expired(cluster):
    """When a remote export is prepared, the keys of earlier preparations whose certificates have
    expired (a day) are removed from the node; younger ones stay."""
    create(cluster)
    first = cluster.run(OpBackupPrepare(instance_name="web1", mode="remote"))["x509_key_name"][0]
    second = cluster.run(OpBackupPrepare(instance_name="web1", mode="remote"))["x509_key_name"][0]
    keys = cluster.nodes["node2"].root / "var/run/genet/crypto"
    day_ago = keys.stat().st_mtime - 24 * 60 * 60 - 60
    os.utime(keys / first, (day_ago, day_ago))
    third = cluster.run(OpBackupPrepare(instance_name="web1", mode="remote"))["x509_key_name"][0]
    assert sorted(p.name for p in keys.iterdir()) == sorted([second, third])


def test_prepare_for_a_local_export_answers_nothing_and_makes_no_key(cluster):
    """When a local export is prepared, there is nothing to exchange: None, and no key anywhere."""
    create(cluster)
    assert cluster.run(OpBackupPrepare(instance_name="web1", mode="local")) is None
    assert not (cluster.nodes["node2"].root / "var/run/genet/crypto").exists()


def test_prepare_refuses_an_instance_whose_primary_node_is_offline(cluster):
    """When the primary node is offline, no key can be made there: refused before any RPC."""
    create(cluster, start=False)
    cluster.run(OpNodeSetParams(node_name="node2", offline=True))
    cluster.refused(OpBackupPrepare(instance_name="web1", mode="remote"), "node2 is offline")
