"""A node's stored configuration: a snapshot of the document and a journal of the changes since.

A config change costs a few hundred bytes written and sent instead of the whole document (3 MB
at 10,000 instances). The snapshot (``config.data``) is the document as genet has always written
it, so an older genet's file loads unchanged. The journal (``config.data.journal``) holds one
JSON line per change; its first line names the snapshot it extends (serial and master epoch), so
a journal left behind by a crash between a new snapshot and the journal's removal is ignored,
and a change applies only to the serial it names as its base. After ``COMPACT_AFTER`` changes
the document is written whole again and the journal starts over.

A change is ``{"base": [serial, epoch], "fields": {...}, "set": {collection: {key: object}},
"del": {collection: [key]}}``: the top-level fields that changed (``serial_no`` and ``mtime``
always, ``cluster`` when it changed), the objects of each collection set or removed.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from genet import errors, serializer
from genet.objects import COLLECTIONS, ConfigData

log = logging.getLogger(__name__)
COMPACT_AFTER = 256


def journal_of(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def stamp_of(data: dict) -> tuple[int, int]:
    """(serial, master epoch) of a document: what a change's base names."""
    return data["serial_no"], int(data["cluster"].get("master_epoch", 0))


def parse(text: bytes | str, source: str = "config") -> ConfigData:
    """Parse and check a config document; ConfigurationError says what is wrong."""
    from genet.config import CONFIG_VERSION
    try:
        data = serializer.loads(text)
    except ValueError as err:
        raise errors.ConfigurationError(f"{source} is corrupt (not valid JSON: {err})") from None
    if not isinstance(data, dict):
        raise errors.ConfigurationError(f"{source} is corrupt: top level is not an object")
    if data.get("version") != CONFIG_VERSION:
        raise errors.ConfigurationError(f"{source} has version {data.get('version')!r}, expected {CONFIG_VERSION}")
    try:
        doc = ConfigData.from_wire(data, source)
    except errors.ConfigurationError as err:
        raise errors.ConfigurationError(f"{source} is corrupt: {err}") from None
    if doc.cluster.master_node not in doc.nodes:
        raise errors.ConfigurationError(f"{source} is corrupt: master node not among the nodes")
    return doc


def apply_change(doc: ConfigData, change: dict) -> None:
    """Apply ``change`` to ``doc`` in place (its base must be the document's stamp)."""
    for name, value in change.get("fields", {}).items():
        field = ConfigData.FIELDS.get(name)
        doc[name] = field.convert(value, "change") if field is not None else value
    for name, objects in change.get("set", {}).items():
        cls, collection = COLLECTIONS[name], doc[name]
        for key, value in objects.items():
            collection[key] = cls.from_wire(value, f"{name}[{key!r}]")
    for name, keys in change.get("del", {}).items():
        for key in keys:
            doc[name].pop(key, None)


def check_change(change: dict) -> None:
    """Refuse a change that is not shaped as one (noded stores what the master sends)."""
    base = change.get("base")
    if not (isinstance(base, list) and len(base) == 2 and all(type(v) is int for v in base)):
        raise errors.ParameterError("a config change needs its base as [serial, epoch]")
    fields = change.get("fields")
    if not isinstance(fields, dict) or type(fields.get("serial_no")) is not int:
        raise errors.ParameterError("a config change needs fields with its serial_no")
    for part in ("set", "del"):
        unknown = set(change.get(part, {})) - set(COLLECTIONS)
        if unknown:
            raise errors.ParameterError(f"a config change names unknown collections: {', '.join(sorted(unknown))}")


def change_stamp(change: dict) -> tuple[int, int]:
    """(serial, master epoch) of the document after ``change``."""
    cluster = change["fields"].get("cluster")
    epoch = int(cluster.get("master_epoch", 0)) if cluster is not None else change["base"][1]
    return change["fields"]["serial_no"], epoch


class ConfigFile:
    """One node's config snapshot and journal; the stamps of both are cached by file version."""

    def __init__(self, path: Path):
        self.path = path
        self.journal = journal_of(path)
        self._snapshot_cache: tuple[tuple, tuple[int, int]] | None = None
        self._journal_cache: tuple[tuple, tuple[int, int] | None, int] | None = None

    # --- reading ---

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> ConfigData:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            raise errors.NotClusterError(
                f"no cluster configuration at {self.path}: this node is not part of a cluster") from None
        except OSError as err:
            raise errors.ConfigurationError(f"cannot read {self.path}: {err}") from None
        doc = parse(text, str(self.path))
        for change in self._changes(stamp_of(doc)):
            apply_change(doc, change)
        return doc

    def stamp(self) -> tuple[int, int]:
        """(serial, master epoch) of the stored config, journal included; (-1, 0) without one."""
        snapshot = self._snapshot_stamp()
        if snapshot is None:
            return -1, 0
        newest, _ = self._journal_state(snapshot)
        return newest or snapshot

    def entries(self) -> int:
        """How many changes the journal holds on top of the snapshot."""
        snapshot = self._snapshot_stamp()
        return 0 if snapshot is None else self._journal_state(snapshot)[1]

    def _snapshot_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._snapshot_cache is None or self._snapshot_cache[0] != key:
            try:
                data = serializer.loads(self.path.read_bytes())
                stamp = stamp_of(data)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return None
            self._snapshot_cache = (key, stamp)
        return self._snapshot_cache[1]

    def _journal_state(self, snapshot: tuple[int, int]) -> tuple[tuple[int, int] | None, int]:
        """The stamp after the journal's last change (None without one) and how many it holds."""
        try:
            st = self.journal.stat()
        except FileNotFoundError:
            return None, 0
        key = (st.st_ino, st.st_mtime_ns, st.st_size, snapshot)
        if self._journal_cache is None or self._journal_cache[0] != key:
            newest, count = None, 0
            for change in self._changes(snapshot):
                newest, count = change_stamp(change), count + 1
            self._journal_cache = (key, newest, count)
        return self._journal_cache[1], self._journal_cache[2]

    def _changes(self, snapshot: tuple[int, int]):
        """The journal's changes that extend ``snapshot``, in order (none if it extends another)."""
        try:
            lines = self.journal.read_bytes().splitlines()
        except FileNotFoundError:
            return
        if not lines or _loads(lines[0]) != {"extends": list(snapshot)}:
            return
        current = snapshot
        for line in lines[1:]:
            change = _loads(line)
            if change is None:
                log.warning("%s: a torn or corrupt line ends the journal", self.journal)
                return
            if tuple(change.get("base", ())) != current:
                log.warning("%s: change %s does not extend serial %d: journal ignored from there",
                            self.journal, change.get("fields", {}).get("serial_no"), current[0])
                return
            yield change
            current = change_stamp(change)

    # --- writing ---

    def replace(self, content: bytes) -> None:
        """Store a whole document (a new snapshot): the journal starts over."""
        from genet.config import write_atomic
        write_atomic(self.path, content)
        self.journal.unlink(missing_ok=True)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.journal.unlink(missing_ok=True)

    def append(self, change: dict, snapshot: tuple[int, int]) -> int:
        """Add ``change`` (whose base is the current stamp) to the journal of ``snapshot``;
        returns how many changes the journal holds now."""
        count = self.entries()
        lines = [] if count else [serializer.dumps({"extends": list(snapshot)})]
        lines.append(serializer.dumps(change))
        fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if count else os.O_TRUNC), 0o640)
        try:
            view = memoryview(b"".join(line + b"\n" for line in lines))
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        # what it just wrote, remembered: the next stamp() need not read the journal again
        self._journal_cache = ((st.st_ino, st.st_mtime_ns, st.st_size, snapshot), change_stamp(change), count + 1)
        return count + 1

    def snapshot_stamp(self) -> tuple[int, int] | None:
        return self._snapshot_stamp()


def _loads(line: bytes):
    try:
        return serializer.loads(line)
    except ValueError:
        return None
