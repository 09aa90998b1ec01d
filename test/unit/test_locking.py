"""Tests for genet.locking (real threads, bounded waits)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from genet.locking import (ALL_SET, BGL, Level, LockError, LockManager,
                           LockTimeout, SharedLock)

WAIT = 3.0  # upper bound for anything that is expected to happen


def wait_until(pred, timeout: float = WAIT) -> None:
    """Poll pred until true; fail the test if it never becomes true."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


class Runner(threading.Thread):
    """Runs fn in a daemon thread and keeps its result or exception."""

    def __init__(self, fn, *args, **kwargs):
        super().__init__(daemon=True)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.result = self.error = None
        self.done = threading.Event()

    def run(self):
        try:
            self.result = self.fn(*self.args, **self.kwargs)
        except BaseException as err:  # noqa: BLE001 - reported to the test
            self.error = err
        finally:
            self.done.set()

    def finish(self):
        assert self.done.wait(WAIT), "thread did not finish"
        self.join(WAIT)
        return self.result


def start(fn, *args, **kwargs) -> Runner:
    runner = Runner(fn, *args, **kwargs)
    runner.start()
    return runner


@pytest.fixture
def glm():
    mgr = LockManager()
    mgr.add(Level.INSTANCE, ["inst1", "inst2", "inst3"])
    mgr.add(Level.NODE, ["node1", "node2", "node3"])
    return mgr


# --- SharedLock ------------------------------------------------------------

def test_shared_holders_coexist():
    """When several owners ask for shared mode, all hold the lock at once."""
    lock = SharedLock("x")
    for owner in ("a", "b", "c"):
        assert lock.acquire(owner, shared=True, timeout=0)
    assert lock.owners() == {"a", "b", "c"}
    assert lock.mode == "shared"
    assert lock.is_owned("b", shared=True) and not lock.is_owned("b", False)


def test_exclusive_excludes_shared_and_exclusive():
    """When a lock is held exclusively, no other shared or exclusive request
    is granted until it is released."""
    lock = SharedLock("x")
    assert lock.acquire("a", shared=False)
    assert not lock.acquire("b", shared=True, timeout=0.05)
    assert not lock.acquire("c", shared=False, timeout=0.05)
    lock.release("a")
    assert lock.acquire("b", shared=True, timeout=0)


def test_shared_holder_excludes_exclusive():
    """When a lock is held shared, an exclusive request waits."""
    lock = SharedLock("x")
    lock.acquire("a", shared=True)
    assert not lock.acquire("b", shared=False, timeout=0.05)
    assert lock.owners() == {"a"}


def test_waiting_exclusive_blocks_new_shared():
    """When an exclusive request is waiting, later shared requests queue
    behind it instead of starving it."""
    lock = SharedLock("x")
    lock.acquire("reader1", shared=True)
    writer = start(lock.acquire, "writer", shared=False, timeout=WAIT)
    wait_until(lambda: lock.pending == 1)
    assert not lock.acquire("reader2", shared=True, timeout=0.1)
    lock.release("reader1")
    assert writer.finish() is True
    assert lock.owners() == {"writer"}


def test_waiters_served_in_priority_order():
    """When waiters with different priorities queue, lower numbers are
    served first, and equal priorities in arrival order."""
    lock = SharedLock("x")
    lock.acquire("holder")
    order = []

    def waiter(name, prio):
        assert lock.acquire(name, timeout=WAIT, priority=prio)
        order.append(name)
        lock.release(name)

    runners = []
    for name, prio in [("p5", 5), ("p1a", 1), ("p3", 3), ("p1b", 1)]:
        runners.append(start(waiter, name, prio))
        wait_until(lambda n=len(runners): lock.pending == n)
    lock.release("holder")
    for runner in runners:
        runner.finish()
        assert runner.error is None
    assert order == ["p1a", "p1b", "p3", "p5"]


def test_timed_out_waiter_unblocks_those_behind_it():
    """When a waiting exclusive request times out, shared requests queued
    behind it are granted."""
    lock = SharedLock("x")
    lock.acquire("reader1", shared=True)
    writer = start(lock.acquire, "writer", shared=False, timeout=0.2)
    wait_until(lambda: lock.pending == 1)
    reader = start(lock.acquire, "reader2", shared=True, timeout=WAIT)
    assert writer.finish() is False
    assert reader.finish() is True
    assert lock.owners() == {"reader1", "reader2"}


def test_deleting_lock_wakes_waiters_with_lock_error():
    """When a lock is deleted by its holder, its waiters get LockError."""
    lock = SharedLock("x")
    lock.acquire("holder")
    waiters = [start(lock.acquire, f"w{i}", shared=bool(i % 2),
                     timeout=WAIT) for i in range(3)]
    wait_until(lambda: lock.pending == 3)
    lock.delete("holder")
    for runner in waiters:
        runner.finish()
        assert isinstance(runner.error, LockError)
    with pytest.raises(LockError):
        lock.acquire("late")


def test_deleting_lock_held_by_someone_else_fails():
    """When another owner holds the lock, delete refuses."""
    lock = SharedLock("x")
    lock.acquire("a", shared=True)
    with pytest.raises(LockError):
        lock.delete("b")
    with pytest.raises(LockError):
        lock.delete()


def test_double_acquire_and_foreign_release_are_errors():
    """When an owner acquires twice or releases what it lacks, LockError."""
    lock = SharedLock("x")
    lock.acquire("a", shared=True)
    with pytest.raises(LockError):
        lock.acquire("a", shared=True)
    with pytest.raises(LockError):
        lock.release("b")


# --- LockManager -----------------------------------------------------------

def test_cluster_level_has_only_bgl(glm):
    """When a manager is created, the cluster level holds just the BGL."""
    assert glm.names(Level.CLUSTER) == {BGL}
    with pytest.raises(LockError):
        glm.add(Level.CLUSTER, ["other"])
    with pytest.raises(LockError):
        glm.remove(Level.CLUSTER, [BGL])


def test_manager_shared_holders_coexist(glm):
    """When two jobs lock the same names shared, both proceed."""
    assert glm.acquire(1, Level.NODE, ["node1", "node2"], shared=True,
                       timeout=0) == {"node1", "node2"}
    assert glm.acquire(2, Level.NODE, ["node2"], shared=True, timeout=0) \
        == {"node2"}
    with pytest.raises(LockTimeout):
        glm.acquire(3, Level.NODE, ["node2"], shared=False, timeout=0.05)


def test_timeout_raises_and_leaves_nothing_held(glm):
    """When an acquisition times out part way, LockTimeout is raised and the
    locks already taken in that call are released."""
    glm.acquire("a", Level.NODE, ["node2"], shared=False)
    with pytest.raises(LockTimeout):
        glm.acquire("b", Level.NODE, ["node1", "node2"], shared=False,
                    timeout=0.1)
    assert glm.owned("b", Level.NODE) == set()
    assert glm.acquire("c", Level.NODE, ["node1"], shared=False,
                       timeout=0) == {"node1"}


def test_lock_timeout_is_a_lock_error():
    """When callers catch LockError, timeouts are included."""
    assert issubclass(LockTimeout, LockError)


def test_ordering_violation_raises(glm):
    """When an owner holds locks at a level, acquiring at that level or a
    lower one raises LockError."""
    glm.acquire("job", Level.NODE, ["node1"], shared=True)
    with pytest.raises(LockError):
        glm.acquire("job", Level.INSTANCE, ["inst1"], shared=True)
    with pytest.raises(LockError):
        glm.acquire("job", Level.NODE, ["node2"], shared=True)
    assert glm.owned("job", Level.INSTANCE) == set()
    glm.acquire("job", Level.NODE_RES, ALL_SET, shared=True)


def test_unknown_name_raises(glm):
    """When a requested lock does not exist, LockError names it and nothing
    is held."""
    with pytest.raises(LockError, match="lock 'node9' at level node does "
                                        "not exist"):
        glm.acquire("job", Level.NODE, ["node1", "node9"], shared=False)
    assert glm.owned("job", Level.NODE) == set()
    glm.acquire("other", Level.NODE, ["node1"], shared=False, timeout=0)


def test_all_set_includes_all_names_and_blocks_add(glm):
    """When an owner holds ALL_SET, it has every name and add() at that level
    waits until it is released."""
    got = glm.acquire("job", Level.NODE, ALL_SET, shared=True)
    assert got == {"node1", "node2", "node3"}
    adder = start(glm.add, Level.NODE, ["node4"])
    time.sleep(0.15)
    assert not adder.done.is_set()
    assert "node4" not in glm.names(Level.NODE)
    glm.add(Level.INSTANCE, ["inst4"])  # other levels are unaffected
    glm.release("job")
    adder.finish()
    assert adder.error is None
    assert "node4" in glm.names(Level.NODE)


def test_all_set_exclusive_owner_can_add(glm):
    """When the ALL_SET exclusive holder adds locks, they join its set."""
    glm.acquire("job", Level.NODE, ALL_SET, shared=False)
    glm.add(Level.NODE, ["node4"], owner="job")
    assert glm.owned("job", Level.NODE) == {"node1", "node2", "node3",
                                            "node4"}
    with pytest.raises(LockTimeout):
        glm.acquire("x", Level.NODE, ["node4"], shared=True, timeout=0.05)


def test_partial_holder_cannot_add(glm):
    """When an owner holds some names at a level, add() refuses rather than
    deadlocking on itself."""
    glm.acquire("job", Level.NODE, ["node1"], shared=False)
    with pytest.raises(LockError):
        glm.add(Level.NODE, ["node4"], owner="job")


def test_individual_holders_do_not_block_add(glm):
    """When owners hold individual names, add() at that level proceeds."""
    glm.acquire("job", Level.NODE, ["node1"], shared=False)
    glm.add(Level.NODE, ["node4"])
    assert "node4" in glm.names(Level.NODE)


def test_all_set_exclusive_waits_for_individual_holders(glm):
    """When a name is held, an exclusive ALL_SET waits for it and then
    holds everything."""
    glm.acquire("a", Level.NODE, ["node2"], shared=True)
    allset = start(glm.acquire, "b", Level.NODE, ALL_SET, shared=False,
                   timeout=WAIT)
    time.sleep(0.1)
    assert not allset.done.is_set()
    glm.release("a")
    assert allset.finish() == {"node1", "node2", "node3"}


def test_removing_lock_wakes_waiters_with_lock_error(glm):
    """When the exclusive holder removes a lock, its waiters get LockError
    and hold nothing."""
    glm.acquire("owner", Level.NODE, ["node1"], shared=False)
    waiter = start(glm.acquire, "w", Level.NODE, ["node1"], shared=True,
                   timeout=WAIT)
    wait_until(lambda: glm.list_owners()["node/node1"]["pending"] == 1)
    glm.remove(Level.NODE, ["node1"], owner="owner")
    waiter.finish()
    assert isinstance(waiter.error, LockError)
    assert glm.owned("w", Level.NODE) == set()
    assert glm.owned("owner", Level.NODE) == set()
    assert "node1" not in glm.names(Level.NODE)


def test_remove_refuses_locks_held_by_others(glm):
    """When another owner holds a lock, remove() raises LockError."""
    glm.acquire("a", Level.NODE, ["node1"], shared=True)
    with pytest.raises(LockError):
        glm.remove(Level.NODE, ["node1"])
    glm.acquire("b", Level.INSTANCE, ["inst1"], shared=False)
    with pytest.raises(LockError):
        glm.remove(Level.INSTANCE, ["inst1"], owner="a")
    glm.remove(Level.NODE, ["node3"])  # unowned: fine
    assert glm.names(Level.NODE) == {"node1", "node2"}


def test_release_owner_releases_everything(glm):
    """When release(owner) is called, all its locks at all levels go."""
    glm.acquire("job", Level.CLUSTER, [BGL], shared=True)
    glm.acquire("job", Level.INSTANCE, ["inst1"], shared=False)
    glm.acquire("job", Level.NODE, ALL_SET, shared=False)
    glm.release("job")
    for level in Level:
        assert glm.owned("job", level) == set()
    assert all(not info["owners"] for info in glm.list_owners().values())
    glm.acquire("other", Level.CLUSTER, [BGL], shared=False, timeout=0)
    glm.add(Level.NODE, ["node4"])


def test_partial_release_keeps_the_rest(glm):
    """When some names are released, the others stay held."""
    glm.acquire("job", Level.NODE, ["node1", "node2"], shared=False)
    glm.release("job", Level.NODE, ["node1"])
    assert glm.owned("job", Level.NODE) == {"node2"}
    glm.acquire("x", Level.NODE, ["node1"], shared=False, timeout=0)
    with pytest.raises(LockError):
        glm.release("job", Level.NODE, ["node3"])
    # Levels below the ones still held cannot be re-entered.
    with pytest.raises(LockError):
        glm.acquire("job", Level.INSTANCE, ["inst1"], shared=True)
    glm.release("job", Level.NODE)
    glm.acquire("job", Level.INSTANCE, ["inst1"], shared=True, timeout=0)


def test_list_owners_reports_mode_owners_and_pending(glm):
    """When locks are held and awaited, list_owners shows it."""
    glm.acquire("a", Level.INSTANCE, ["inst1"], shared=True)
    glm.acquire("b", Level.INSTANCE, ["inst1"], shared=True)
    info = glm.list_owners()
    assert info["instance/inst1"] == {"mode": "shared",
                                      "owners": {"a", "b"}, "pending": 0, "waiting": []}
    assert info["cluster/BGL"]["mode"] is None
    assert "node/node3" in info


def test_disjoint_instances_proceed_in_parallel(glm):
    """When two owners lock disjoint instances, both hold them at once."""
    barrier = threading.Barrier(2, timeout=WAIT)

    def job(owner, name):
        glm.acquire(owner, Level.INSTANCE, [name], shared=False, timeout=WAIT)
        barrier.wait()  # both must be inside their locks simultaneously
        glm.release(owner)

    runners = [start(job, 1, "inst1"), start(job, 2, "inst2")]
    for runner in runners:
        runner.finish()
        assert runner.error is None


def test_stress_random_ordered_sets_never_deadlock_or_overlap():
    """When many threads take random name sets level by level, none
    deadlocks and no name ever has an exclusive holder alongside another."""
    glm = LockManager()
    levels = {Level.INSTANCE: [f"inst{i}" for i in range(6)],
              Level.NODE: [f"node{i}" for i in range(5)]}
    for level, names in levels.items():
        glm.add(level, names)
    guard = threading.Lock()
    readers: dict[tuple, int] = {}
    writers: dict[tuple, int] = {}
    errors: list[str] = []
    stop = time.monotonic() + 1.5

    def enter(key, shared):
        with guard:
            if writers.get(key, 0) or (not shared and readers.get(key, 0)):
                errors.append(f"overlap on {key}")
            table = readers if shared else writers
            table[key] = table.get(key, 0) + 1

    def leave(key, shared):
        with guard:
            (readers if shared else writers)[key] -= 1

    def worker(owner):
        rnd = random.Random(owner)
        while time.monotonic() < stop:
            held = []
            try:
                if rnd.random() < 0.1:
                    shared = rnd.random() < 0.7
                    glm.acquire(owner, Level.CLUSTER, ALL_SET, shared,
                                timeout=WAIT)
                    enter((Level.CLUSTER, BGL), shared)
                    held.append(((Level.CLUSTER, BGL), shared))
                for level, names in levels.items():
                    shared = rnd.random() < 0.5
                    if rnd.random() < 0.1:
                        got = glm.acquire(owner, level, ALL_SET, shared,
                                          timeout=WAIT,
                                          priority=rnd.randint(0, 3))
                    else:
                        want = rnd.sample(names, rnd.randint(0, 3))
                        got = glm.acquire(owner, level, want, shared,
                                          timeout=WAIT,
                                          priority=rnd.randint(0, 3))
                    for name in got:
                        enter((level, name), shared)
                        held.append(((level, name), shared))
                time.sleep(rnd.random() * 0.002)
            except LockTimeout as err:
                errors.append(f"deadlock suspected: {err}")
                return
            finally:
                try:
                    for key, shared in held:
                        leave(key, shared)
                finally:
                    glm.release(owner)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT + 3)
        assert not thread.is_alive(), "worker stuck"
    assert errors == []
    assert all(not info["owners"] and not info["pending"]
               for info in glm.list_owners().values())

