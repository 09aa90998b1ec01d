"""-I/--ialloc-src: every program that reads a cluster reads it from an IAllocator request too.

genet's programs read the cluster of a request as they read the same cluster's text file (the
same output, byte for byte). Ganeti's 3.0.2 counts each instance of a request twice, so its
output there is not the reference; its refusals of unreadable requests are, and are matched.
"""
from __future__ import annotations

import json
import subprocess

import pytest

import htools_testlib as lib
from genet.htools import ialloc, text

PROGRAMS = ["hbal", "hspace", "hroller", "hinfo", "hcheck"]
# a request has no cluster policy (Ganeti's reader takes the default), no master node and no
# CPU speeds: these clusters' text files do not depend on them
CLUSTERS = ["hbal-location-exclusion", "partly-used", "hroller-online"]


def run(program, *args) -> tuple[str, str, int]:
    out = subprocess.run([str(program), *map(str, args)], capture_output=True, text=True, timeout=300)
    return out.stdout, out.stderr, out.returncode


def request_of(data_file, folder):
    """An allocation request (Ganeti's format) carrying the cluster of ``data_file``."""
    data = text.load(str(data_file))
    path = folder / f"{data_file.stem}.json"
    path.write_text(json.dumps(ialloc.message(data, {
        "type": "allocate", "name": "new1", "memory": 512, "disks": [{"size": 1024, "mode": "rw"}], "vcpus": 1,
        "disk_template": "drbd", "nics": [], "tags": [], "os": "debian", "disk_space_total": 1024,
        "spindle_use": 1, "required_nodes": 2})))
    return path


@pytest.mark.parametrize("cluster", CLUSTERS)
@pytest.mark.parametrize("tool", [p for p in PROGRAMS if p != "hroller"])
def test_a_request_gives_the_output_of_its_clusters_text_file(tool, cluster, tmp_path):
    genet = lib.programs(tool)[1]
    data_file = lib.GANETI_DATA / f"{cluster}.data"
    from_text = run(genet, "-t", data_file)
    from_request = run(genet, "--ialloc-src", request_of(data_file, tmp_path))
    assert from_request == from_text
    assert from_text[0] or from_text[1]


@pytest.mark.parametrize("cluster", ["hroller-online", "hbal-location-exclusion"])
def test_hroller_plans_from_a_request_as_ganetis_hroller(cluster, tmp_path):
    """A request names no master node: hroller refuses it, and with --force plans without one
    (on these clusters Ganeti's double count changes nothing)."""
    real, genet = lib.programs("hroller")
    request = request_of(lib.GANETI_DATA / f"{cluster}.data", tmp_path)
    refused = run(genet, "-I", request)
    assert refused == run(real, "-I", request)
    assert refused[2] == 1 and "No master node found" in refused[1]
    forced = run(genet, "-I", request, "--force")
    assert forced == run(real, "-I", request, "--force")
    assert forced[2] == 0 and "Node Reboot Groups" in forced[0]


@pytest.mark.parametrize("body", [None, "{}", "not json"], ids=["missing", "empty", "not-json"])
@pytest.mark.parametrize("tool", PROGRAMS)
def test_unreadable_requests_are_refused_as_ganetis_programs_refuse_them(tool, body, tmp_path):
    real, genet = lib.programs(tool)
    path = tmp_path / "request.json"
    if body is not None:
        path.write_text(body)
    theirs, ours = run(real, "-I", path), run(genet, "-I", path)
    assert ours == theirs
    assert ours[2] != 0
