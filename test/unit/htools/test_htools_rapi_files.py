"""The RAPI backend reading saved replies (-m file://DIR), genet's htools next to Ganeti's on
the replies of Ganeti's own tests: the same output, so the backend reads what Ganeti's reads."""
from __future__ import annotations

import pytest

import htools_testlib as lib

REPLIES = lib.GANETI_DATA / "rapi"


@pytest.mark.parametrize("tool,options", [("hbal", ()), ("hbal", ("-C", "-v", "-v")), ("hinfo", ("-v", "-v")),
                                          ("hroller", ("--print-moves", "-v", "-v", "-v")),
                                          ("hroller", ("--full-evacuation", "--print-moves"))])
def test_same_output_as_ganeti_from_saved_rapi_replies(tool, options):
    real, genet = lib.require_real(tool), lib.GENET_HBAL.parent / tool
    want = lib.run(real, "-m", f"file://{REPLIES}", *options)
    got = lib.run(genet, "-m", f"file://{REPLIES}", *options)
    assert want.returncode == 0 and want.stdout
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)


def test_missing_reply_named_as_ganeti_names_it(tmp_path):
    want = lib.run(lib.require_real("hinfo"), "-m", f"file://{tmp_path}")
    got = lib.run(lib.GENET_HBAL.parent / "hinfo", "-m", f"file://{tmp_path}")
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert "groups.json: openFile: does not exist" in got.stderr
