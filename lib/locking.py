"""Lock manager for the genet master daemon.

Jobs run in worker threads and lock cluster objects (instances, node groups,
nodes, ...) before touching them.  Locks are grouped into levels which must be
acquired in increasing order by every owner; within a level, names are taken
in sorted order.  Together this gives a global lock order, so no deadlock can
arise between well-behaved owners.

An "owner" is any hashable (normally a job id), not a thread: a job keeps its
locks across whatever threads act on its behalf.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Hashable, Iterable

from genet.errors import LockError, LockTimeout


class Level(enum.IntEnum):
    """Lock levels; an owner must acquire them in increasing order."""

    CLUSTER = 0    # the Big Ganeti Lock ("BGL"), cluster-wide operations
    INSTANCE = 1   # one lock per instance
    NODEGROUP = 2  # one lock per node group
    NODE = 3       # one lock per node (configuration/state of the node)
    NODE_RES = 4   # node resources (memory, disk) used while placing instances
    NETWORK = 5    # one lock per network


BGL = "BGL"


class _AllSet:
    """Marker type for ALL_SET; a singleton so `names is ALL_SET` works."""

    def __repr__(self) -> str:
        return "ALL_SET"


ALL_SET = _AllSet()

_NOBODY = object()  # "no exclusive owner"; owners may legitimately be None


def _remaining(deadline: float | None) -> float | None:
    """Time left until deadline (None = forever), never negative."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


@dataclass(eq=False)
class _Waiter:
    owner: Hashable
    shared: bool
    priority: int
    seq: int
    key: tuple = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.priority, self.seq)


class SharedLock:
    """A named reader/writer lock with priorities and deletion.

    Waiters queue in (priority, arrival) order.  A request is granted only
    when it is compatible with the holders *and* nothing incompatible queues
    ahead of it, so a waiting exclusive request is not starved by later
    shared ones of equal or lower urgency.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition(threading.Lock())
        self._shared: set[Hashable] = set()
        self._exclusive: object = _NOBODY
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._deleted = False

    def __repr__(self) -> str:
        return f"<SharedLock {self.name!r} mode={self.mode}>"

    def _owned_by(self, owner: Hashable) -> bool:
        return owner in self._shared or (
            self._exclusive is not _NOBODY and self._exclusive == owner)

    def _grantable(self, waiter: _Waiter) -> bool:
        for other in self._queue:
            if other is waiter:
                break
            if not (other.shared and waiter.shared):
                return False  # someone incompatible is ahead of us
        if self._exclusive is not _NOBODY:
            return False
        return waiter.shared or not self._shared

    def acquire(self, owner: Hashable, shared: bool = False,
                timeout: float | None = None, priority: int = 0) -> bool:
        """Acquire for owner; False on timeout, LockError if deleted."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._deleted:
                raise LockError(f"lock {self.name!r} has been deleted")
            if self._owned_by(owner):
                raise LockError(f"lock {self.name!r} already held by {owner!r}")
            waiter = _Waiter(owner, shared, priority, next(self._seq))
            bisect.insort(self._queue, waiter, key=lambda w: w.key)
            try:
                while True:
                    if self._deleted:
                        raise LockError(f"lock {self.name!r} has been deleted")
                    if self._grantable(waiter):
                        if shared:
                            self._shared.add(owner)
                        else:
                            self._exclusive = owner
                        return True
                    left = _remaining(deadline)
                    if left == 0.0:
                        return False
                    self._cond.wait(left)
            finally:
                # Leaving the queue (granted or not) may unblock others.
                self._queue.remove(waiter)
                self._cond.notify_all()

    def release(self, owner: Hashable) -> None:
        """Release owner's hold, whatever its mode."""
        with self._cond:
            if self._exclusive is not _NOBODY and self._exclusive == owner:
                self._exclusive = _NOBODY
            elif owner in self._shared:
                self._shared.discard(owner)
            else:
                raise LockError(f"lock {self.name!r} not held by {owner!r}")
            self._cond.notify_all()

    def delete(self, owner: Hashable | None = None) -> None:
        """Delete the lock; waiters wake up with LockError.

        The lock must be unowned or held exclusively by owner; the check is
        atomic with the deletion, so a racing acquire cannot slip in between.
        """
        with self._cond:
            if self._deleted:
                raise LockError(f"lock {self.name!r} has been deleted")
            if self._shared or (self._exclusive is not _NOBODY and (
                    owner is None or self._exclusive != owner)):
                raise LockError(f"lock {self.name!r} is in use")
            self._deleted = True
            self._exclusive = _NOBODY
            self._cond.notify_all()

    def is_owned(self, owner: Hashable, shared: bool | None = None) -> bool:
        """Whether owner holds the lock (in the given mode, if not None)."""
        with self._cond:
            if shared is None:
                return self._owned_by(owner)
            if shared:
                return owner in self._shared
            return self._exclusive is not _NOBODY and self._exclusive == owner

    def owners(self) -> set[Hashable]:
        with self._cond:
            if self._exclusive is not _NOBODY:
                return {self._exclusive}
            return set(self._shared)

    @property
    def mode(self) -> str | None:
        """"exclusive", "shared" or None when unheld."""
        with self._cond:
            if self._exclusive is not _NOBODY:
                return "exclusive"
            return "shared" if self._shared else None

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def waiting(self) -> list[tuple[str, Hashable]]:
        """(mode, owner) of each request waiting for the lock, in the order they will be granted."""
        with self._cond:
            return [("shared" if w.shared else "exclusive", w.owner) for w in self._queue]

    @property
    def deleted(self) -> bool:
        with self._cond:
            return self._deleted


class LockManager:
    """All the master daemon's locks, by level, with per-owner bookkeeping.

    Each level also has an internal level-wide lock.  Only ALL_SET
    acquisitions hold it (in the requested mode) and add() takes it
    exclusively, so the set of names cannot grow under an ALL_SET holder.
    Individual names do not take it: conflicts between them and ALL_SET are
    resolved on the name locks themselves, and add() need not wait for every
    job that happens to hold one name at that level.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # guards the dicts below, never waits
        self._locks: dict[Level, dict[str, SharedLock]] = {
            lvl: {} for lvl in Level}
        self._locks[Level.CLUSTER][BGL] = SharedLock(BGL)
        self._level_locks = {lvl: SharedLock(f"{lvl.name.lower()}/*")
                             for lvl in Level}
        # owner -> level -> names; a level key exists while the level is held
        self._owned: dict[Hashable, dict[Level, set[str]]] = {}

    def names(self, level: Level) -> set[str]:
        with self._mutex:
            return set(self._locks[Level(level)])

    def owned(self, owner: Hashable, level: Level) -> set[str]:
        with self._mutex:
            return set(self._owned.get(owner, {}).get(Level(level), ()))

    def add(self, level: Level, names: Iterable[str],
            owner: Hashable | None = None) -> None:
        """Create locks; waits while anybody holds ALL_SET at this level.

        An owner holding ALL_SET exclusively may add (pass owner=...); the new
        locks are then acquired for it so its ALL_SET stays complete.
        """
        level, names = Level(level), list(dict.fromkeys(names))
        if level == Level.CLUSTER:
            raise LockError("the cluster level only has the BGL")
        lvl_lock = self._level_locks[level]
        via_owner = owner is not None and lvl_lock.is_owned(owner, False)
        if not via_owner and owner is not None and (
                lvl_lock.is_owned(owner) or self.owned(owner, level)):
            raise LockError(f"{owner!r} must hold ALL_SET exclusively at "
                            f"level {level.name.lower()} to add locks")
        token = object()
        if not via_owner:
            lvl_lock.acquire(token, shared=False)
        try:
            with self._mutex:
                existing = self._locks[level]
                dupes = sorted(n for n in names if n in existing)
                if dupes:
                    raise LockError(f"locks {dupes} at level "
                                    f"{level.name.lower()} already exist")
                for name in names:
                    lock = existing[name] = SharedLock(name)
                    if via_owner:
                        lock.acquire(owner, shared=False, timeout=0)
                        self._owned[owner][level].add(name)
        finally:
            if not via_owner:
                lvl_lock.release(token)

    def remove(self, level: Level, names: Iterable[str],
               owner: Hashable | None = None) -> None:
        """Delete locks that are unowned or held exclusively.

        With owner given the locks must be unowned or held exclusively by it;
        without, an exclusive holder is assumed to be the (trusted) caller.
        """
        level = Level(level)
        with self._mutex:
            existing = self._locks[level]
            locks = []
            for name in names:
                if level == Level.CLUSTER or name not in existing:
                    raise LockError(f"cannot remove lock {name!r} at level "
                                    f"{level.name.lower()}")
                locks.append(existing[name])
            for lock in locks:
                victim = owner
                if owner is None and lock.mode == "exclusive":
                    # Trust the caller to be the holder, but only once the
                    # holder has finished acquiring (bookkeeping done).
                    (victim,) = lock.owners()
                    if lock.name not in self._owned.get(victim, {}).get(
                            level, ()):
                        raise LockError(f"lock {lock.name!r} is in use")
                lock.delete(victim)
                del existing[lock.name]
                if victim is not None:
                    self._owned.get(victim, {}).get(level, set()).discard(
                        lock.name)

    def acquire(self, owner: Hashable, level: Level,
                names: Iterable[str] | _AllSet, shared: bool,
                timeout: float | None = None, priority: int = 0) -> set[str]:
        """Acquire names (or ALL_SET) at level; returns the names taken."""
        level = Level(level)
        deadline = None if timeout is None else time.monotonic() + timeout
        want_all = names is ALL_SET
        lvl_name = level.name.lower()
        with self._mutex:
            held = self._owned.get(owner, {})
            if any(lvl >= level for lvl in held):
                raise LockError(
                    f"{owner!r} already holds locks at level {lvl_name} or "
                    f"higher ({', '.join(l.name.lower() for l in held)})")
            if not want_all:
                wanted = sorted({names} if isinstance(names, str)
                                else set(names))
                for name in wanted:
                    if name not in self._locks[level]:
                        raise LockError(f"lock {name!r} at level {lvl_name} "
                                        "does not exist")
                items = [(n, self._locks[level][n]) for n in wanted]
        if not want_all and not items:
            return set()
        lvl_lock = self._level_locks[level]
        taken: list[SharedLock] = []
        try:
            if want_all:
                if not lvl_lock.acquire(owner, shared, _remaining(deadline),
                                        priority):
                    raise LockTimeout(f"timeout on level {lvl_name}")
                taken.append(lvl_lock)
                with self._mutex:  # stable now: add() is blocked
                    items = sorted(self._locks[level].items())
            for name, lock in items:
                try:
                    ok = lock.acquire(owner, shared, _remaining(deadline),
                                      priority)
                except LockError:
                    if want_all and lock.deleted:
                        continue  # removed by its holder meanwhile
                    raise LockError(f"lock {name!r} at level {lvl_name} was "
                                    "removed") from None
                if not ok:
                    raise LockTimeout(f"timeout acquiring lock {name!r} at "
                                      f"level {lvl_name}")
                taken.append(lock)
        except BaseException:
            for lock in reversed(taken):
                lock.release(owner)
            raise
        got = {lock.name for lock in taken if lock is not lvl_lock}
        with self._mutex:
            self._owned.setdefault(owner, {})[level] = set(got)
        return got

    def release(self, owner: Hashable, level: Level | None = None,
                names: Iterable[str] | None = None) -> None:
        """Release names at level, a whole level, or everything (level None).

        A level is left (and ALL_SET's add() block lifted) once no names at
        it remain held.
        """
        with self._mutex:
            held = self._owned.get(owner, {})
            if level is None:
                if names is not None:
                    raise LockError("names given without a level")
                levels = sorted(held, reverse=True)
            else:
                levels = [Level(level)] if Level(level) in held else []
                if names is not None:
                    names = set(names)
                    have = held.get(Level(level), set())
                    if not names <= have:
                        raise LockError(f"{owner!r} does not hold "
                                        f"{sorted(names - have)}")
            for lvl in levels:
                to_drop = held[lvl] if names is None else names
                for name in sorted(to_drop, reverse=True):
                    self._locks[lvl][name].release(owner)
                held[lvl] -= set(to_drop)
                if not held[lvl]:
                    del held[lvl]
                    if self._level_locks[lvl].is_owned(owner):
                        self._level_locks[lvl].release(owner)
            if not held:
                self._owned.pop(owner, None)

    def list_owners(self) -> dict[str, dict]:
        """Debug view (gnt-debug locks): "level/name" -> mode, owners, the requests waiting
        ((mode, owner) each) and their count."""
        with self._mutex:
            locks = [(lvl, lock) for lvl in Level for lock in
                     [self._level_locks[lvl], *self._locks[lvl].values()]]
        result = {}
        for lvl, lock in locks:
            key = lock.name if lock.name.endswith("/*") else \
                f"{lvl.name.lower()}/{lock.name}"
            waiting = lock.waiting()
            result[key] = {"mode": lock.mode, "owners": lock.owners(),
                           "pending": len(waiting), "waiting": waiting}
        return result
