"""Parameter types: each checks a value, parses it from a CLI string and describes itself.

One declaration per opcode parameter feeds validation, the gnt-* options and the
RAPI body checks, so the three cannot drift apart.
"""
from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Callable, Iterable, Iterator


class ParamType:
    """Base: ``check`` returns the (possibly normalised) value or raises ValueError."""
    name = "any"
    schema: dict = {}

    def check(self, value: Any) -> Any:
        return value

    def parse(self, text: str) -> Any:
        """Turn a command-line string into a value of this type."""
        return self.check(text)

    def __repr__(self) -> str:
        return self.name


class String(ParamType):
    name = "string"
    schema = {"type": "string"}

    def __init__(self, non_empty: bool = False, max_len: int = 1024):
        self.non_empty = non_empty
        self.max_len = max_len

    def check(self, value):
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        if self.non_empty and not value:
            raise ValueError("must not be empty")
        if len(value) > self.max_len:
            raise ValueError(f"longer than {self.max_len} characters")
        return value


class Constrained(String):
    """A non-empty string of at most ``MAX_LEN`` characters that also obeys a rule of its own:
    a subclass states its limit and its ``rule`` (returns the value or raises ValueError)."""
    MAX_LEN = 1024

    def __init__(self):
        super().__init__(non_empty=True, max_len=self.MAX_LEN)

    def check(self, value):
        return self.rule(super().check(value))

    def rule(self, value: str) -> str:
        return value


class ObjectName(Constrained):
    """A name users type and URLs carry: printable, no whitespace, no "/"."""
    name = "object-name"
    schema = {"type": "string", "pattern": r"^[^\s/]{1,255}$"}
    MAX_LEN = 255

    def rule(self, value):
        if not value.isprintable() or "/" in value or any(c.isspace() for c in value) \
                or value in (".", ".."):
            raise ValueError(f"invalid name {value!r}: use printable characters other than"
                             " whitespace and '/'")
        return value


class Tag(Constrained):
    """Ganeti's tag: 1 to 128 of letters, digits and ``.+*/:@-_``."""
    name = "tag"
    schema = {"type": "string", "pattern": r"^[\w.+*/:@-]{1,128}$"}
    MAX_LEN = 128
    _RE = re.compile(r"^[\w.+*/:@-]+$")

    def rule(self, value):
        if not self._RE.match(value):
            raise ValueError(f"invalid tag {value!r}: use letters, digits and .+*/:@-_")
        return value


class Bool(ParamType):
    name = "bool"
    schema = {"type": "boolean"}
    _WORDS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}

    def check(self, value):
        if not isinstance(value, bool):
            raise ValueError(f"expected a boolean, got {type(value).__name__}")
        return value

    def parse(self, text):
        try:
            return self._WORDS[text.lower()]
        except KeyError:
            raise ValueError(f"expected yes or no, got {text!r}") from None


class Int(ParamType):
    name = "int"
    schema = {"type": "integer"}

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}, got {value}")
        return value

    def parse(self, text):
        try:
            return self.check(int(text))
        except ValueError as err:
            raise ValueError(f"expected an integer, got {text!r}" if "invalid literal" in str(err) else str(err)) from None


class Float(ParamType):
    name = "float"
    schema = {"type": "number"}

    def __init__(self, minimum: float | None = None):
        self.minimum = minimum

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}, got {value}")
        return float(value)

    def parse(self, text):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        return self.check(value)


class OneOf(ParamType):
    """One of some names: given, or (one callable) a registry's, asked each time, so a backend
    registered later counts too.

    A registry's names are the master's to check while a gnt-* command runs
    (``checked_by_master``): masterd checks every opcode it is given against the backends it
    has, and the command does not import every backend module to learn their names."""

    _by_master = False

    def __init__(self, *choices: str | Callable[[], Iterable[str]]):
        fixed = tuple(choices)
        self._registry = len(choices) == 1 and callable(choices[0])
        self._source = choices[0] if self._registry else (lambda: fixed)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._source())

    @property
    def name(self) -> str:
        return "|".join(self.choices)

    @property
    def schema(self) -> dict:
        return {"type": "string", "enum": list(self.choices)}

    def check(self, value):
        if self._registry and OneOf._by_master:
            if not isinstance(value, str):
                raise ValueError(f"must be a name, got {value!r}")
            return value
        if value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        return value


@contextlib.contextmanager
def checked_by_master() -> Iterator[None]:
    """While it lasts, registry choices (OneOf of a callable) are left to the master to check."""
    OneOf._by_master = True
    try:
        yield
    finally:
        OneOf._by_master = False


class Wrapper(ParamType):
    """A type made of another one, ``inner``: it names and describes itself by adapting the inner
    type's name and schema, asked each time (an inner OneOf's choices may grow)."""
    inner: ParamType

    @property
    def name(self) -> str:
        return self.adapt_name(self.inner.name)

    @property
    def schema(self) -> dict:
        return self.adapt_schema(self.inner.schema)

    def adapt_name(self, name: str) -> str:
        return name

    def adapt_schema(self, schema: dict) -> dict:
        return schema


class ListOf(Wrapper):
    """A list of ``item``s; ``csv`` makes its CLI option one value, its items separated by ``sep``,
    instead of a repeated option."""

    def __init__(self, item: ParamType, max_items: int = 10000, csv: bool = False, sep: str = ","):
        self.inner = item
        self.max_items = max_items
        self.csv = csv
        self.sep = sep

    @property
    def item(self) -> ParamType:
        """The type of each item (the inner type)."""
        return self.inner

    def adapt_name(self, name: str) -> str:
        return f"list of {name}"

    def adapt_schema(self, schema: dict) -> dict:
        return {"type": "array", "items": schema}

    def check(self, value):
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        if len(value) > self.max_items:
            raise ValueError(f"more than {self.max_items} items")
        out = []
        for idx, item in enumerate(value):
            try:
                out.append(self.inner.check(item))
            except ValueError as err:
                raise ValueError(f"item {idx}: {err}") from None
        return out

    def parse(self, text):
        return self.check([self.inner.parse(part) for part in text.split(self.sep) if part])


class Dict(ParamType):
    """A JSON object; on the CLI ``key=value,key=value`` (Ganeti's -B/-H style)."""
    name = "dict"
    schema = {"type": "object"}

    def check(self, value):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"expected an object with string keys, got {type(value).__name__}")
        return value

    def parse(self, text):
        result: dict[str, Any] = {}
        for part in text.split(","):
            if not part:
                continue
            key, sep, val = part.partition("=")
            if not key:
                raise ValueError(f"empty key in {text!r}")
            if not sep:
                result[key.removeprefix("no_")] = not key.startswith("no_")
            else:
                result[key] = val
        return result


class Json(ParamType):
    name = "json"
    schema = {}

    def parse(self, text):
        try:
            return json.loads(text)
        except ValueError as err:
            raise ValueError(f"invalid JSON: {err}") from None


class Maybe(Wrapper):
    """The inner type's values or None."""

    def __init__(self, inner: ParamType):
        self.inner = inner

    def adapt_name(self, name: str) -> str:
        return f"{name} or none"

    def adapt_schema(self, schema: dict) -> dict:
        return dict(schema, nullable=True)

    def check(self, value):
        return None if value is None else self.inner.check(value)

    def parse(self, text):
        return self.inner.parse(text)


class Only(Wrapper):
    """A Ganeti parameter genet honours at one value only, the behaviour genet has: that value is
    accepted (so Ganeti's clients that send it keep working), any other is refused, never ignored."""

    def __init__(self, inner: ParamType, value: Any, why: str):
        self.inner, self.value, self.why = inner, value, why

    def adapt_name(self, name: str) -> str:
        return f"{name} ({self.value!r} only)"

    def adapt_schema(self, schema: dict) -> dict:
        return dict(schema, enum=[self.value])

    def check(self, value):
        value = self.inner.check(value)
        if value != self.value:
            raise ValueError(f"genet supports only {json.dumps(self.value)}: {self.why}")
        return value

    def parse(self, text):
        return self.check(self.inner.parse(text))


class JobDepends(ParamType):
    """Ganeti's ``depends``: [[job id (negative = relative), [final statuses]], ...]."""
    name = "job dependencies"
    schema = {"type": "array", "items": {"type": "array"}}
    FINAL = ("success", "error", "canceled")

    def check(self, value):
        if not isinstance(value, list):
            raise ValueError("expected a list of [job id, [statuses]]")
        out = []
        for dep in value:
            if (not isinstance(dep, (list, tuple)) or len(dep) != 2 or isinstance(dep[0], bool)
                    or not isinstance(dep[0], int) or not isinstance(dep[1], list)):
                raise ValueError(f"bad dependency {dep!r}: expected [job id, [statuses]]")
            for status in dep[1]:
                if status not in self.FINAL:
                    raise ValueError(f"bad dependency status {status!r}")
            out.append([dep[0], list(dep[1])])
        return out

    def parse(self, text):
        return self.check(json.loads(text))



def parse_size(text: str | int) -> int:
    """A size in MiB from '512', '512M', '1G', '1.5G' or '1T' (Ganeti's units)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"invalid size {text!r}")
    value, unit = text.strip(), "M"
    if value[-1].upper() in "MGT" or value[-1] in "mgt":
        value, unit = value[:-1], value[-1].upper()
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"invalid size {text!r}: use a number with an optional unit M, G or T") from None
    return int(number * {"M": 1, "G": 1024, "T": 1024 * 1024}[unit])


class Size(ParamType):
    """A size in MiB; strings with units are accepted (CLI and RAPI)."""
    name = "size"
    schema = {"type": "integer", "minimum": 1}

    def check(self, value):
        if isinstance(value, str):
            value = parse_size(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a size in MiB, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value


class Record(ParamType):
    """A dict with known keys, each with its type; on the CLI ``[N:]key=value,key=value``."""

    def __init__(self, name: str, fields: dict[str, ParamType], required: tuple[str, ...] = ()):
        self.name, self.fields, self.required = name, fields, required

    @property
    def schema(self) -> dict:
        """Built when asked: a field's may come from a registry of backends (OneOf)."""
        return {"type": "object", "properties": {k: t.schema for k, t in self.fields.items()},
                "required": list(self.required), "additionalProperties": False}

    def check(self, value):
        if not isinstance(value, dict):
            raise ValueError(f"{self.name}: expected an object, got {type(value).__name__}")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise ValueError(f"{self.name}: unknown key(s) {', '.join(map(str, unknown))}"
                             f" (known: {', '.join(self.fields)})")
        missing = [k for k in self.required if k not in value]
        if missing:
            raise ValueError(f"{self.name}: missing {', '.join(missing)}")
        out = {}
        for key, item in value.items():
            try:
                out[key] = self.fields[key].check(item)
            except ValueError as err:
                raise ValueError(f"{self.name} {key}: {err}") from None
        return out

    def parse(self, text):
        _, colon, rest = text.partition(":")
        if colon and _.isdigit():
            text = rest
        raw = Dict().parse(text)
        typed = {}
        for key, value in raw.items():
            field = self.fields.get(key)
            typed[key] = field.parse(value) if field is not None and isinstance(value, str) else value
        return self.check(typed)


class Modification(ParamType):
    """Ganeti's list modifications: ``[action, index, params]``; CLI ``add:k=v`` or ``N:remove``."""

    def __init__(self, record: Record):
        self.record = record
        self.name = f"{record.name} modification"
        self.schema = {"type": "array", "items": [{"enum": ["add", "remove"]}, {"type": "integer"},
                                                   record.schema]}

    def check(self, value):
        if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] in ("add", "remove"):
            value = [value[0], -1, value[1]]          # Ganeti's older [action, params] form
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise ValueError(f"{self.name}: expected [action, index, params] or [action, params]")
        action, index, params = value
        if action not in ("add", "remove"):
            raise ValueError(f"{self.name}: unknown action {action!r} (add or remove)")
        if isinstance(index, bool) or not isinstance(index, int) or index < -1:
            raise ValueError(f"{self.name}: index must be -1 (at the end) or a position")
        if action == "add":
            params = self.record.check(params or {})
        elif params:
            raise ValueError(f"{self.name}: remove takes no parameters")
        return [action, index, params or {}]

    def parse(self, text):
        head, _, rest = text.partition(":")
        if head == "add":
            return self.check(["add", -1, self.record.parse(rest) if rest else {}])
        if head.isdigit() and rest == "remove":
            return self.check(["remove", int(head), {}])
        if head == "remove" and not rest:
            return self.check(["remove", -1, {}])
        raise ValueError(f"{self.name}: use add:key=value,... or N:remove, got {text!r}")
