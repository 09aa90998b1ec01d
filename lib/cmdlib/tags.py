"""Tags on the cluster, nodes, instances, node groups and networks."""
from __future__ import annotations

import re

from genet import errors, opcodes
from genet.cmdlib.base import LogicalUnit

MAX_TAGS = 4096
_TAG_RE = re.compile(r"^[\w.+*/:@-]+$")
_COLLECTIONS = {"node": "nodes", "instance": "instances", "network": "networks", "nodegroup": "nodegroups"}


def _target(data: dict, kind: str, name: str | None) -> dict:
    if kind == "cluster":
        return data.cluster
    if not name:
        raise errors.OpPrereqError(f"a {kind} name is required", errors.ECode.INVAL)
    objects = data.get(_COLLECTIONS[kind], {})
    if kind in ("nodegroup", "network"):      # stored by UUID, named by name
        objects = {o["name"]: o for o in objects.values()}
    try:
        return objects[name]
    except KeyError:
        raise errors.OpPrereqError(f"{kind} {name!r} does not exist", errors.ECode.NOENT) from None


def _check_tags(tags: list[str]) -> None:
    for tag in tags:
        if not _TAG_RE.match(tag):
            raise errors.OpPrereqError(f"invalid tag {tag!r}: use letters, digits and .+*/:@-_",
                                       errors.ECode.INVAL)


class LUTagsGet(LogicalUnit):
    OPCODE = opcodes.OpTagsGet
    REQ_BGL = False

    def exec(self):
        return self.cfg.read(lambda d: sorted(_target(d, self.op.kind, self.op.name).get("tags", [])))


class LUTagsSet(LogicalUnit):
    OPCODE = opcodes.OpTagsSet

    def check_prereq(self):
        _check_tags(self.op.tags)
        self.cfg.read(lambda d: _target(d, self.op.kind, self.op.name))

    def exec(self):
        def change(data):
            obj = _target(data, self.op.kind, self.op.name)
            tags = set(obj.get("tags", [])) | set(self.op.tags)
            if len(tags) > MAX_TAGS:
                raise errors.TagError(f"too many tags on {self.op.kind} (limit {MAX_TAGS})")
            obj["tags"] = sorted(tags)
        self.cfg.update(change)


class LUTagsDel(LogicalUnit):
    OPCODE = opcodes.OpTagsDel

    def check_prereq(self):
        current = set(self.cfg.read(lambda d: _target(d, self.op.kind, self.op.name).get("tags", [])))
        missing = sorted(set(self.op.tags) - current)
        if missing:
            raise errors.OpPrereqError(f"tag(s) {', '.join(missing)} not found", errors.ECode.NOENT)

    def exec(self):
        def change(data):
            obj = _target(data, self.op.kind, self.op.name)
            obj["tags"] = sorted(set(obj.get("tags", [])) - set(self.op.tags))
        self.cfg.update(change)
