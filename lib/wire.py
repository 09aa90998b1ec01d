"""Typed values on the wire: check a JSON value against a type and build the typed object.

The node RPC (genet.rpc_defs) declares its arguments and results as Python types: ``str``,
``int``, ``float``, ``bool``, ``dict``, ``list[X]``, ``X | None``, dataclasses deriving
from :class:`WireObject` and the config's objects (genet.objects, dicts with typed fields). :func:`decode` checks what arrived and builds dataclasses from their
JSON objects; :func:`encode` turns them back into plain JSON values.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from genet.errors import ConfigurationError
from genet.objects import ConfigObject


class WireTypeError(TypeError):
    """A value does not have the declared type; the message names where it is."""


class WireObject:
    """A dataclass sent as a JSON object with one key per field. Unknown keys are ignored (a
    newer peer may send more); a missing field without a default is an error."""

    @classmethod
    def from_wire(cls, value: Any, where: str = "value"):
        if not isinstance(value, dict):
            raise WireTypeError(f"{where} must be an object ({cls.__name__}), not {_kind(value)}")
        kwargs = {}
        for field in dataclasses.fields(cls):
            if field.name in value:
                kwargs[field.name] = decode(value[field.name], _hints(cls)[field.name], f"{where}.{field.name}")
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise WireTypeError(f"{where} lacks {field.name!r} ({cls.__name__})")
        return cls(**kwargs)

    def to_wire(self) -> dict:
        return {field.name: encode(getattr(self, field.name)) for field in dataclasses.fields(self)}


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def decode(value: Any, tp: Any, where: str = "value") -> Any:
    """``value`` as type ``tp`` (ints accepted as floats, dataclasses built); WireTypeError if not."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        failure = None
        for option in options:
            if option is type(None):
                continue
            try:
                return decode(value, option, where)
            except WireTypeError as err:
                failure = failure or err
        raise failure
    if origin is list:
        if not isinstance(value, list):
            raise WireTypeError(f"{where} must be a list, not {_kind(value)}")
        (item,) = typing.get_args(tp)
        return [decode(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        tp = dict
    if isinstance(tp, type) and issubclass(tp, WireObject):
        return tp.from_wire(value, where)
    if isinstance(tp, type) and issubclass(tp, ConfigObject):
        try:
            return tp.from_wire(value, where)
        except ConfigurationError as err:
            raise WireTypeError(str(err)) from None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise WireTypeError(f"{where} must be {_name(tp)}, not {_kind(value)}")
    return value


def _name(tp: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "an object",
            list: "a list"}.get(tp, getattr(tp, "__name__", str(tp)))


def encode(value: Any) -> Any:
    """A plain JSON value: WireObjects as objects, tuples as lists."""
    if isinstance(value, WireObject):
        return value.to_wire()
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value
