"""A gnt-* command leaves the backend names (disk templates, hypervisors) to the master: it does
not import every backend module to learn them, and the master refuses an unknown one with the
message the command would have printed."""
from __future__ import annotations

import pytest

from genet import errors, ptypes
from genet.opcodes import OpInstanceCreate

BAD = dict(instance_name="web1", disk_template="nosuch", os_type="noop", pnode="node2")


def test_a_command_leaves_the_template_to_the_master_which_refuses_it_the_same_way(cluster):
    with pytest.raises(errors.OpPrereqError) as local:
        OpInstanceCreate(**BAD)
    with ptypes.checked_by_master():
        op = OpInstanceCreate(**BAD)                   # what the command sends
        with pytest.raises(errors.OpPrereqError, match="must be a name"):
            OpInstanceCreate(**dict(BAD, disk_template=7))
    with pytest.raises(errors.OpPrereqError) as remote:
        cluster.submit(op)
    assert str(remote.value) == str(local.value) and "must be one of diskless, drbd, file" in str(local.value)
    assert cluster.data().instances == {}


def test_only_the_command_run_leaves_them_to_the_master(monkeypatch):
    """gnt-* main() holds checked_by_master while the handler runs, and only then."""
    from genet.cli import gnt_debug
    seen = []
    monkeypatch.setattr(gnt_debug.base, "submit_or_run",
                        lambda ns, ops, client=None: seen.append(ptypes.OneOf._by_master) or [[True, None]])
    assert gnt_debug.main(["delay", "0"]) == 0
    assert seen == [True] and ptypes.OneOf._by_master is False
    with pytest.raises(errors.OpPrereqError, match="must be one of"):
        OpInstanceCreate(**BAD)
