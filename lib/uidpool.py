"""The cluster's user-id pool (Ganeti's uid_pool): ranges of uids that KVM guests with
security_model=pool run as, one uid per guest and node.

The master keeps the pool as sorted [lower, higher] ranges (bounds inclusive) and writes it to
every node's ssconf ``uid_pool`` (one range a line). A node takes a uid as Ganeti's uidpool does:
a lock file per uid in the run directory marks it taken; an exclusive lock on that file, and no
process running under the uid, make it ours; the file stays while the guest runs and goes when
the guest stops (``release``).
"""
from __future__ import annotations

import fcntl
import os
import random
from pathlib import Path

from genet import errors, paths
from genet.ptypes import ParamType

UID_MIN, UID_MAX = 0, 2 ** 32 - 1       # Ganeti's UIDPOOL_UID_MIN/MAX


def _checked(lower: int, higher: int) -> list[int]:
    if lower > higher:
        raise ValueError(f"lower user-id range boundary value ({lower}) is larger than higher boundary"
                         f" value ({higher})")
    if lower < UID_MIN:
        raise ValueError(f"lower user-id range boundary value ({lower}) is smaller than {UID_MIN}")
    if higher > UID_MAX:
        raise ValueError(f"higher user-id boundary value ({higher}) is larger than {UID_MAX}")
    return [lower, higher]


class UidPool(ParamType):
    """A user-id pool: [[lower, higher], ...]; on the CLI ``1000-2000,3000`` (Ganeti's syntax)."""
    name = "user-id pool"
    schema = {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer"}] * 2}}

    def check(self, value):
        if not isinstance(value, list):
            raise ValueError(f"expected a list of [lower, higher] ranges, got {type(value).__name__}")
        ranges = []
        for item in value:
            if not (isinstance(item, (list, tuple)) and len(item) == 2
                    and all(isinstance(b, int) and not isinstance(b, bool) for b in item)):
                raise ValueError(f"expected a [lower, higher] range of user-ids, got {item!r}")
            ranges.append(_checked(*item))
        return sorted(ranges)

    def parse(self, text, separator: str = ","):
        ranges = []
        for definition in text.split(separator):
            if not definition.strip():
                continue
            bounds = definition.strip().split("-")
            if len(bounds) > 2:
                raise ValueError(f"invalid user-id range definition (only one hyphen allowed): {definition}")
            try:
                ranges.append([int(bounds[0]), int(bounds[-1])])
            except ValueError:
                raise ValueError(f"invalid user-id value in {definition!r}") from None
        return self.check(ranges)


UID_POOL = UidPool()


def format_pool(pool: list, separator: str = ", ") -> str:
    """Ganeti's FormatUidPool: ``1000-2000, 3000`` (what ``parse`` reads back)."""
    return separator.join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in pool)


def added(pool: list, ranges: list) -> list:
    """The pool with ``ranges`` added (a range already in it is not doubled)."""
    return sorted([list(r) for r in pool] + [list(r) for r in ranges if list(r) not in pool])


def removed(pool: list, ranges: list) -> list:
    """The pool without ``ranges``; each must be one of its ranges exactly, as in Ganeti."""
    pool = [list(r) for r in pool]
    for r in ranges:
        if list(r) not in pool:
            raise errors.OpPrereqError(f"user-id range to be removed is not found in the current user-id pool:"
                                       f" {format_pool([r])}", errors.ECode.INVAL)
        pool.remove(list(r))
    return pool


def expand(pool: list) -> set[int]:
    return {uid for lo, hi in pool for uid in range(lo, hi + 1)}


# --- on a node ---------------------------------------------------------------

def lock_dir() -> Path:
    return paths.run_dir() / "uid-pool"


def node_pool() -> list:
    """The pool as this node's ssconf has it."""
    from genet import config
    text = config.ssconf_value("uid_pool") or ""
    return UID_POOL.parse(text, separator="\n")


def _uid_in_use(uid: int) -> bool:
    """Whether a process runs under ``uid`` (Ganeti asks pgrep -u); a zombie (a stopped guest's
    QEMU until its exit is collected) runs nothing."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            return True
    return False


class TakenUid:
    """A uid this node took from the pool; its lock is held until ``unlock`` (the guest runs)."""

    def __init__(self, uid: int, fd: int):
        self.uid, self._fd = uid, fd

    def unlock(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def take(pool: list) -> TakenUid:
    """An unused uid of the pool, locked; uids without a lock file are tried first, in random order."""
    uids = expand(pool)
    if not uids:
        raise errors.HypervisorError("the cluster's user-id pool is empty (gnt-cluster modify --uid-pool)")
    directory = lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    marked = {int(n) for n in os.listdir(directory) if n.isdigit()} & uids
    free, taken = list(uids - marked), list(marked)
    random.shuffle(free)
    random.shuffle(taken)
    for uid in free + taken:
        fd = os.open(directory / str(uid), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if _uid_in_use(uid):
            os.close(fd)
            continue
        return TakenUid(uid, fd)
    raise errors.HypervisorError(f"no unused user-id left in the pool {format_pool(pool)}")


def release(uid: int | TakenUid) -> None:
    """Give a uid back to the pool (its guest stopped)."""
    if isinstance(uid, TakenUid):
        uid.unlock()
        uid = uid.uid
    (lock_dir() / str(uid)).unlink(missing_ok=True)
