"""Disk copies between nodes through Ganeti's compression tools (genet.transfer, genet.compression):
the stream is compressed by the sender's tool and expanded by the receiver's, the data arrives
unchanged, and the cluster's list of allowed tools is checked as Ganeti checks it."""
from __future__ import annotations

import os
import stat

import pytest

from genet import compression, errors, paths, ssl_utils, transfer


@pytest.fixture
def node(tmp_path, monkeypatch):
    with paths.acting_as(tmp_path / "root", "node1"):
        paths.ensure_dirs()
        ssl_utils.generate_cluster_cert(paths.cluster_cert(), "c1")
        yield tmp_path


def _tool(folder, name: str) -> None:
    """A custom tool as Ganeti wants one (gzip's options): it logs how it was called, then gzips."""
    script = folder / name
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {folder}/{name}.calls\nexec gzip -c \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def copy(node, compress: str) -> tuple[dict, dict]:
    source, target = node / "source.img", node / "target.img"
    source.write_bytes(b"genet" * 300_000 + os.urandom(4096))
    target.write_bytes(b"")
    receiver = transfer.Receiver(target, "127.0.0.1", compress)
    sent = transfer.send(source, "127.0.0.1", receiver.port, compress)
    got = receiver.result(30)
    assert target.read_bytes() == source.read_bytes()
    return sent, got


@pytest.mark.parametrize("tool", ["none", "gzip", "gzip-fast", "gzip-slow"])
def test_a_copy_arrives_unchanged_with_every_default_tool(node, tool):
    sent, got = copy(node, tool)
    assert sent == got and sent["bytes"] == 1_504_096


def test_a_custom_tool_compresses_on_the_sender_and_expands_with_d_on_the_receiver(node, monkeypatch):
    """When the cluster allows a tool of its own, the sender runs it bare and the receiver with -d."""
    _tool(node, "mygz")
    monkeypatch.setenv("PATH", f"{node}:{os.environ['PATH']}")
    copy(node, "mygz")
    assert sorted((node / "mygz.calls").read_text().splitlines()) == ["", "-d"]


def test_a_tool_that_fails_fails_the_copy_with_its_message(node, monkeypatch):
    """When the receiver's tool cannot expand the stream, the copy fails naming the tool, its exit
    status and its message, and the sender learns that the copy was not confirmed."""
    script = node / "badgz"
    script.write_text("#!/bin/sh\nif [ \"$1\" = -d ]; then cat > /dev/null; echo corrupt >&2; exit 2; fi\n"
                      "exec gzip -c\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{node}:{os.environ['PATH']}")
    source, target = node / "s.img", node / "t.img"
    source.write_bytes(os.urandom(3 << 20))
    target.write_bytes(b"")
    receiver = transfer.Receiver(target, "127.0.0.1", "badgz")
    with pytest.raises(errors.OpExecError, match="the receiver of s.img did not confirm the copy"):
        transfer.send(source, "127.0.0.1", receiver.port, "badgz")
    with pytest.raises(errors.OpExecError, match=r"badgz -d failed \(exit 2\): corrupt"):
        receiver.result(30)


def test_a_tool_missing_on_the_node_fails_the_copy_naming_it(node):
    (node / "t.img").write_bytes(b"")
    with pytest.raises(errors.OpExecError, match="compression tool 'no-such-zip' is not installed on this node"):
        transfer.Receiver(node / "t.img", "127.0.0.1", "no-such-zip")


@pytest.mark.parametrize("tools, message", [
    (["gzip", "x;rm"], "The tools 'x;rm' contain illegal characters"),
    (["lzop"], "the gzip utility must be present among the compression tools"),
    (["gzip", "none"], "none is a reserved value used for no compression"),
])
def test_the_clusters_tools_are_checked_as_ganeti_does(tools, message):
    with pytest.raises(errors.OpPrereqError, match=message):
        compression.check_tools(tools)


def test_a_copy_may_use_only_none_or_an_allowed_tool():
    compression.check_allowed("none", ["gzip"])
    compression.check_allowed("lzop", ["gzip", "lzop"])
    with pytest.raises(errors.OpPrereqError, match=r"Compression tool not allowed, tools allowed are \[gzip\]"):
        compression.check_allowed("lzop", ["gzip"])
