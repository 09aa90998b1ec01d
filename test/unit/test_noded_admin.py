"""genet-noded's administration procedures on one node root (genet.noded_admin): installed
versions, disk sizes, file uploads, and the certificate renewal rounds of ssl_utils."""
from __future__ import annotations

import os
import subprocess

import pytest

from genet import __version__, errors, paths, ssl_utils
from genet.noded import NodeProcedures
from genet.noded_admin import disk_size


@pytest.fixture
def node(tmp_path):
    with paths.acting_as(tmp_path, "node1"):
        paths.ensure_dirs()
        ssl_utils.generate_cluster_cert(paths.cluster_cert(), "c1")
        yield NodeProcedures()


def test_installed_versions_are_the_version_directories_with_an_interpreter_and_the_running_one(node):
    for version, runnable in (("0.2.0", True), ("0.3.0", False)):
        folder = paths.root() / "usr/lib/genet/versions" / version / "bin"
        folder.mkdir(parents=True)
        if runnable:
            (folder / "python3").write_text("#!/bin/sh\n")
    assert node.call("installed_versions", []) == sorted({"0.2.0", __version__})


def test_switching_to_a_version_not_installed_is_refused_naming_it(node):
    with pytest.raises(errors.OpPrereqError, match="genet version 9.9.9 is not installed on node1"):
        node.call("version_switch", ["9.9.9"])


def test_disk_size_is_a_raw_files_length_and_another_formats_virtual_size(tmp_path):
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"\0" * 4096)
    assert disk_size(raw, "raw") == 4096
    qcow = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "3M"], check=True)
    assert disk_size(qcow, "qcow2") == 3 * 1024 * 1024


def test_upload_file_writes_below_the_node_root_with_its_mode_and_refuses_a_relative_path(node):
    node.call("upload_file", ["/etc/motd", "aGVsbG8K", 0o640])
    written = paths.root() / "etc/motd"
    assert written.read_text() == "hello\n" and oct(os.stat(written).st_mode & 0o777) == "0o640"
    with pytest.raises(errors.OpPrereqError, match="not absolute"):
        node.call("upload_file", ["etc/motd", "aGVsbG8K", 0o640])


def test_run_command_returns_exit_code_and_output_together(node):
    assert node.call("run_command", ["echo out; echo err >&2; exit 4"]) == {"exit_code": 4, "output": "out\nerr\n"}


def test_certificate_rounds_trust_both_while_switching_and_only_the_new_one_after(node, tmp_path):
    """When a certificate is staged, switched and retired, the node trusts the old and the new one
    in between and only the new one at the end; switching twice is harmless, to an unstaged one refused."""
    current = paths.cluster_cert()
    old = ssl_utils.cert_info(current)["fingerprint"]
    ssl_utils.generate_cluster_cert(tmp_path / "new.pem", "c1")
    new = node.call("certificate_stage", [(tmp_path / "new.pem").read_text()])["fingerprint"]
    assert ssl_utils.trusted(current) == [current, ssl_utils.staged(current)]
    with pytest.raises(errors.CertificateError, match="no staged certificate"):
        node.call("certificate_switch", [old[::-1]])
    assert node.call("certificate_switch", [new]) is True and node.call("certificate_switch", [new]) is True
    assert ssl_utils.cert_info(current)["fingerprint"] == new
    assert ssl_utils.cert_info(ssl_utils.retired(current))["fingerprint"] == old
    node.call("certificate_retire", [])
    assert ssl_utils.trusted(current) == [current]


def test_certificate_install_refuses_a_key_that_is_not_the_certificates(node, tmp_path):
    ssl_utils.generate_cluster_cert(tmp_path / "a.pem", "a")
    ssl_utils.generate_cluster_cert(tmp_path / "b.pem", "b")
    a, b = (tmp_path / "a.pem").read_text(), (tmp_path / "b.pem").read_text()
    mixed = a[:a.index("-----BEGIN CERTIFICATE")] + b[b.index("-----BEGIN CERTIFICATE"):]
    with pytest.raises(errors.CertificateError, match="does not belong"):
        node.call("certificate_install", ["rapi", mixed])
    node.call("certificate_install", ["rapi", a])
    assert (paths.data_dir() / "rapi.pem").read_text() == a
    assert ssl_utils.rapi_cert() == paths.data_dir() / "rapi.pem"
