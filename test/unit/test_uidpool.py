"""genet.uidpool: Ganeti's user-id pool syntax, and how a node takes and gives back its uids."""
from __future__ import annotations

import os

import pytest

from genet import errors, uidpool
from genet.hypervisor.kvm.backend import pool_user

FREE = [54321, 54322]          # uids no process of this machine runs as


def test_pool_definitions_parse_as_ganeti_and_format_back():
    pool = uidpool.UID_POOL.parse("5000-5009, 4000,7000-7000")
    assert pool == [[4000, 4000], [5000, 5009], [7000, 7000]]
    assert uidpool.format_pool(pool) == "4000, 5000-5009, 7000"
    assert uidpool.UID_POOL.parse(uidpool.format_pool(pool, "\n"), separator="\n") == pool
    assert uidpool.UID_POOL.parse("") == []


@pytest.mark.parametrize("text,why", [("1-2-3", "only one hyphen"), ("a-5", "invalid user-id value"),
                                      ("9-1", "lower user-id range boundary value \\(9\\) is larger"),
                                      ("-1", "invalid user-id value")])
def test_malformed_pool_definitions_are_refused(text, why):
    with pytest.raises(ValueError, match=why):
        uidpool.UID_POOL.parse(text)


def test_adding_keeps_one_copy_and_removing_needs_the_exact_range():
    pool = uidpool.added([[5000, 5009]], [[5000, 5009], [6000, 6000]])
    assert pool == [[5000, 5009], [6000, 6000]]
    assert uidpool.removed(pool, [[6000, 6000]]) == [[5000, 5009]]
    with pytest.raises(errors.OpPrereqError, match="not found in the current user-id pool: 5000-5004"):
        uidpool.removed(pool, [[5000, 5004]])


def test_a_node_takes_each_uid_once_until_it_is_released(tmp_path, monkeypatch):
    """While a uid is taken (locked, then marked by its lock file) no other start gets it; with
    every uid taken a start fails; a released uid is taken again."""
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    pool = [FREE]
    first = uidpool.take(pool)
    second = uidpool.take(pool)       # the first one's lock is still held
    assert sorted([first.uid, second.uid]) == FREE
    first.unlock()
    second.unlock()
    assert sorted(os.listdir(uidpool.lock_dir())) == [str(u) for u in FREE]
    uidpool.release(first.uid)
    again = uidpool.take(pool)        # the free one first, before the marked ones
    assert again.uid == first.uid
    held = uidpool.take(pool)         # only marked ones are left: a marked, unlocked uid whose
    assert held.uid == second.uid     # process is gone may be taken (a guest that died)
    with pytest.raises(errors.HypervisorError, match="no unused user-id left in the pool 54321-54322"):
        uidpool.take(pool)


def test_a_uid_some_process_runs_as_is_not_taken(tmp_path, monkeypatch):
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    mine = os.getuid()
    with pytest.raises(errors.HypervisorError, match="no unused user-id left"):
        uidpool.take([[mine, mine]])


def test_qemu_runs_as_the_uids_user_name_or_as_uid_and_gid_without_one():
    assert pool_user(0) == "root"
    assert pool_user(FREE[0]) == f"{FREE[0]}:{FREE[0]}"
