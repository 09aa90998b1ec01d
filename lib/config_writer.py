"""masterd's owner of the configuration: serialised changes, each stored and replicated as a change.

A mutator changes the live document in place (no copy of 10,000 instances per change). The
collections note which of their objects a mutator reached, so what changed is found by comparing
only those with the last committed snapshot; that difference is the change the journal stores
and the master candidates receive (genet.config_file). Readers share an immutable snapshot that
is rebuilt per change by replacing only the changed objects.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, TypeVar

from genet import errors, serializer
from genet.config import now
from genet.config_file import COMPACT_AFTER, ConfigFile, stamp_of
from genet.objects import COLLECTIONS, ConfigData

T = TypeVar("T")
log = logging.getLogger(__name__)

# (the live document after the change, the change or None for the whole document) -> None;
# raises QuorumError if the master candidates did not commit it
Replicator = Callable[[ConfigData, dict], None]


class TrackedCollection(dict):
    """A collection of the live document that records the keys a mutator reached."""

    __slots__ = ("reached", "everything")

    def __init__(self, *args):
        super().__init__(*args)
        self.reached: set | None = None
        self.everything = False

    def track(self) -> None:
        self.reached, self.everything = set(), False

    def untrack(self) -> None:
        self.reached, self.everything = None, False

    def _reach(self, key) -> None:
        if self.reached is not None:
            self.reached.add(key)

    def _reach_all(self) -> None:
        if self.reached is not None:
            self.everything = True

    def __getitem__(self, key):
        self._reach(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._reach(key)
        return super().get(key, default)

    def __setitem__(self, key, value):
        self._reach(key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self._reach(key)
        super().__delitem__(key)

    def pop(self, key, *default):
        self._reach(key)
        return super().pop(key, *default)

    def setdefault(self, key, default=None):
        self._reach(key)
        return super().setdefault(key, default)

    def values(self):
        self._reach_all()
        return super().values()

    def items(self):
        self._reach_all()
        return super().items()

    def update(self, *args, **kwargs):
        self._reach_all()
        super().update(*args, **kwargs)

    def popitem(self):
        self._reach_all()
        return super().popitem()

    def clear(self):
        self._reach_all()
        super().clear()

    def copy(self):
        self._reach_all()
        return dict(self)

    def __iter__(self):
        # (defined so that dict(collection) and {**collection} take each object through
        # __getitem__ instead of copying them unseen)
        return super().__iter__()


def copy_of(data: ConfigData) -> ConfigData:
    """A deep, typed copy of a document (checked already)."""
    return ConfigData.wrap(serializer.loads(serializer.dumps(data)))


class ConfigWriter:
    """Owns the configuration in masterd; every change is a serialised, replicated write."""

    def __init__(self, path: Path, replicate: Replicator | None = None, compact_after: int = COMPACT_AFTER):
        self.path = path
        self.file = ConfigFile(path)
        self.compact_after = compact_after
        self._snapshot = self.file.load()
        self._data = self._live(copy_of(self._snapshot))
        self._content: bytes | None = None            # the whole document, encoded when asked for
        self._lock = threading.RLock()          # the live document
        self._write_lock = threading.RLock()    # one writer at a time, replication included
        self._replicate = replicate

    @staticmethod
    def _live(data: ConfigData) -> ConfigData:
        for name in COLLECTIONS:
            data[name] = TrackedCollection(data[name])
        return data

    def set_replicator(self, replicate: Replicator | None) -> None:
        self._replicate = replicate

    def snapshot(self) -> ConfigData:
        """The last written config, shared by readers: do not mutate it."""
        with self._lock:
            return self._snapshot

    def draft(self) -> ConfigData:
        """A private copy of the last written config, to try a change on."""
        return copy_of(self.snapshot())

    def read(self, reader: Callable[[ConfigData], T]) -> T:
        """Run ``reader`` on the live document under the lock (it must not mutate it)."""
        with self._lock:
            return reader(self._data)

    @property
    def serial(self) -> int:
        with self._lock:
            return self._data["serial_no"]

    def content(self) -> bytes:
        """The whole document as stored (what a candidate that missed changes receives)."""
        with self._lock:
            if self._content is None:
                self._content = serializer.dumps(self._snapshot)
            return self._content

    def writing(self):
        """Held while a change is made and replicated: the next writer waits."""
        return self._write_lock

    def update(self, mutator: Callable[[ConfigData], T]) -> T:
        """Apply ``mutator``; on success the change is written and replicated.

        A mutator that raises leaves the config as it was; so does a change the master
        candidates did not acknowledge (it never committed: the master does not keep it).
        """
        with self._write_lock:
            with self._lock:
                previous = self._snapshot
                collections = [self._data[name] for name in COLLECTIONS]
                for collection in collections:
                    collection.track()
                try:
                    result = mutator(self._data)
                    change = self._change(previous, now())
                    self._store(change)
                except BaseException:
                    self._data = self._live(copy_of(previous))
                    raise
                finally:
                    for collection in collections:
                        collection.untrack()
                self._snapshot = self._next_snapshot(previous, change)
                self._content = None
            # readers go on while the candidates store it; the next writer waits (serials stay in order)
            if self._replicate is not None:
                try:
                    self._replicate(self._data, change)
                except errors.QuorumError:
                    self._restore(previous, self._data["serial_no"] + 1)
                    raise
                except errors.GenericError:
                    self._restore(previous)
                    raise
            return result

    def _change(self, previous: ConfigData, mtime: float) -> dict:
        """What the mutator changed against ``previous``; the live document gets the new serial
        and its changed objects become typed (and checked)."""
        data = self._data
        for name, cls in COLLECTIONS.items():
            if not isinstance(data.get(name), TrackedCollection):       # replaced whole
                data[name] = TrackedCollection(data.get(name) or {})
                data[name].track()
                data[name].everything = True
        change: dict = {"base": list(stamp_of(previous)), "fields": {}, "set": {}, "del": {}}
        for name, value in data.items():
            if name not in COLLECTIONS and name not in ("serial_no", "mtime") and previous.get(name) != value:
                field = ConfigData.FIELDS.get(name)
                data[name] = field.convert(value, "config") if field is not None else value
                change["fields"][name] = data[name]
        for name, cls in COLLECTIONS.items():
            live, before = data[name], previous[name]
            keys = set(live) | set(before) if live.everything else live.reached
            for key in keys:
                if key not in dict.keys(live):
                    if key in before:
                        change["del"].setdefault(name, []).append(key)
                    continue
                value = dict.__getitem__(live, key)
                if before.get(key) != value:
                    value = cls.from_wire(value, f"{name}[{key!r}]")
                    dict.__setitem__(live, key, value)
                    change["set"].setdefault(name, {})[key] = value
        data["serial_no"] = previous["serial_no"] + 1
        data["mtime"] = mtime
        change["fields"].update(serial_no=data["serial_no"], mtime=mtime)
        return {key: value for key, value in change.items() if value or key in ("base", "fields")}

    def _store(self, change: dict) -> None:
        """The change on this node's disk: appended to the journal, or a new snapshot now and then."""
        snapshot = self.file.snapshot_stamp()
        if snapshot is None or self.file.entries() >= self.compact_after:
            self.file.replace(serializer.dumps(self._data))
        else:
            self.file.append(change, snapshot)

    def _next_snapshot(self, previous: ConfigData, change: dict) -> ConfigData:
        """``previous`` with the change applied, sharing every object the change did not touch."""
        snapshot = ConfigData(previous)
        fields = serializer.loads(serializer.dumps(change["fields"]))
        for name, value in fields.items():
            field = ConfigData.FIELDS.get(name)
            snapshot[name] = field.convert(value, "config") if field is not None else value
        for name in set(change.get("set", {})) | set(change.get("del", {})):
            collection = snapshot[name] = dict(previous[name])
            for key, value in change.get("set", {}).get(name, {}).items():
                collection[key] = COLLECTIONS[name].from_wire(serializer.loads(serializer.dumps(value)))
            for key in change.get("del", {}).get(name, ()):
                collection.pop(key, None)
        return snapshot

    def _restore(self, previous: ConfigData, serial: int | None = None) -> None:
        """Go back to the config before a change that did not commit. With ``serial`` (above the
        refused change's) the old content is pushed again, so the minority of candidates that
        stored the refused change replace it: a later master-failover must not find it there as
        the newest config. (A deposed master pushes nothing: the candidates refuse it.)"""
        data = copy_of(previous)
        if serial is not None:
            data["serial_no"], data["mtime"] = serial, now()
        content = serializer.dumps(data)
        with self._lock:
            self.file.replace(content)
            self._snapshot, self._content = copy_of(data), content
            self._data = self._live(data)
        if serial is not None:
            try:
                self._replicate(copy_of(data), None)
            except errors.GenericError as err:
                log.warning("config serial %d (the old content again) not committed either: %s", serial, err)
