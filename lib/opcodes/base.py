"""The opcode machinery: an opcode is a plain record of what a user asked for, declaring its
parameters once. From each :class:`Param` come the validation here, the gnt-* options
(cli/base.py) and the RAPI body handling, so the three cannot disagree.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

from genet import errors
from genet.ptypes import Bool, Int, JobDepends, ListOf, Maybe, ObjectName, ParamType, String


REQUIRED = object()
POSITIONAL = "positional"

NAME = String(non_empty=True, max_len=255)
OBJECT_NAME = ObjectName()
TAG_KINDS = ("cluster", "node", "instance", "nodegroup", "network")


class Param:
    """One opcode parameter: its type, default, documentation, CLI and RAPI spellings.

    ``cli`` is "--opt", a tuple of spellings, POSITIONAL, or None (RAPI/luxi only).
    ``rapi`` is the name Ganeti's RAPI body gives the parameter where it differs from ``name``
    (``name`` for a new instance's ``instance_name``, ``os`` for ``os_type``): a body may use
    either, and the OpenAPI document shows both. ``query`` is the query argument that may carry
    the parameter (``dry-run``, ``force``, ``type``...); the RAPI refuses any query argument that
    neither a parameter nor the resource declares.
    A plain class rather than a dataclass: gnt-* commands import this at every start.
    """
    __slots__ = ("name", "type", "default", "doc", "cli", "metavar", "rapi", "query")

    def __init__(self, name: str, type: ParamType, default: Any = REQUIRED, doc: str = "",
                 cli: str | tuple[str, ...] | None = None, metavar: str | None = None, *,
                 rapi: str | None = None, query: str | None = None):
        self.name, self.type, self.default, self.doc, self.cli, self.metavar = \
            name, type, default, doc, cli, metavar
        self.rapi, self.query = rapi, query

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


COMMON_PARAMS = (
    Param("dry_run", Bool(), False, "Only check prerequisites, change nothing", "--dry-run", query="dry-run"),
    Param("debug_level", Int(0, 10), 0, "Debug level"),
    Param("priority", Int(-20, 19), 0, "Job priority (-20 highest .. 19 lowest)", "--priority"),
    Param("depends", Maybe(JobDepends()), None, "Jobs this one waits for: [[job id, [statuses]]]"),
    Param("comment", Maybe(String()), None, "Free-form comment stored with the opcode"),
    Param("reason", ListOf(ListOf(ParamType()), 100), [],
          "Trail of reasons: [[source, reason, timestamp]]"),
)

_REGISTRY: dict[str, type["OpCode"]] = {}


def disk_templates() -> tuple[str, ...]:
    """The registered disk templates; the registry is imported when asked (a gnt-* command
    rarely asks: the master checks the names, see ptypes.checked_by_master)."""
    from genet.storage import base
    return base.names()


def hypervisors() -> tuple[str, ...]:
    """The registered hypervisors (as disk_templates)."""
    from genet.hypervisor import base
    return base.names()


def _op_id(class_name: str) -> str:
    return "OP_" + re.sub(r"(?<!^)(?=[A-Z])", "_", class_name[2:]).upper()


class OpCode:
    """Base class; subclasses set PARAMS and a docstring whose first line is the summary."""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    OP_ID: ClassVar[str] = ""
    SUMMARY_FIELD: ClassVar[str | None] = None   # parameter shown in job summaries
    WITH_LU: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.OP_ID = _op_id(cls.__name__)
        _REGISTRY[cls.OP_ID] = cls

    @classmethod
    def all_params(cls) -> tuple[Param, ...]:
        return cls.PARAMS + COMMON_PARAMS

    def __init__(self, **kwargs: Any):
        params = {p.name: p for p in self.all_params()}
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise errors.OpPrereqError(
                f"{self.OP_ID}: unknown parameter(s) {', '.join(unknown)}", errors.ECode.INVAL)
        for name, param in params.items():
            value = kwargs.get(name)
            if value is None and not isinstance(param.type, Maybe):
                value = REQUIRED   # a null from RAPI means "use the default"
            if name in kwargs and value is not REQUIRED:
                try:
                    value = param.type.check(value)
                except ValueError as err:
                    raise errors.OpPrereqError(
                        f"{self.OP_ID}: parameter {name!r}: {err}", errors.ECode.INVAL) from None
            elif param.required:
                raise errors.OpPrereqError(
                    f"{self.OP_ID}: missing required parameter {name!r}", errors.ECode.INVAL)
            else:
                value = _copy_default(param.default)
            setattr(self, name, value)

    def to_dict(self) -> dict:
        data = {p.name: getattr(self, p.name) for p in self.all_params()}
        data["OP_ID"] = self.OP_ID
        return data

    def summary(self) -> str:
        """Ganeti's job summary: ``OP_ID`` without the prefix, with its main field."""
        text = self.OP_ID.removeprefix("OP_")
        if self.SUMMARY_FIELD:
            text += f"({getattr(self, self.SUMMARY_FIELD)})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


def _copy_default(value: Any) -> Any:
    return [*value] if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


def from_dict(data: Any) -> OpCode:
    """Build and validate an opcode from its wire form; OpPrereqError names what is wrong."""
    if not isinstance(data, dict):
        raise errors.OpPrereqError(f"an opcode must be an object, got {type(data).__name__}")
    data = dict(data)
    op_id = data.pop("OP_ID", None)
    cls = _REGISTRY.get(op_id) if isinstance(op_id, str) else None
    if cls is None:
        raise errors.OpPrereqError(f"unknown opcode {op_id!r}", errors.ECode.INVAL)
    return cls(**data)


def registry() -> dict[str, type[OpCode]]:
    return dict(_REGISTRY)
