"""Query filter language for the ``--filter`` option of list commands.

Users narrow down ``gnt-* list`` output with expressions such as
``status == "running" and not admin_state``.  This module turns that text
into the nested-list form used by the query layer (modelled on Ganeti's
qfilter) and compiles the list form into a predicate over result rows, so
that parsing, validation and evaluation live in one place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any



class _Pyparsing:
    """pyparsing, imported when the first filter is parsed: a command that only builds filters
    (names_filter, make_filter) does not pay its 40 ms."""

    def __getattr__(self, name: str):
        import pyparsing
        globals()["pp"] = pyparsing
        return getattr(pyparsing, name)


pp = _Pyparsing()

__all__ = ["FilterError", "parse_filter", "names_filter", "is_filter", "is_glob", "make_filter", "glob_pattern",
           "compile_filter"]

Row = Mapping[str, object]
Predicate = Callable[[Row], bool]


class FilterError(ValueError):
    """Raised for filter text or filter lists that cannot be used."""


# ---------------------------------------------------------------------------
# Text -> list form

_IDENT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_./"
_KEYWORDS = ("and", "or", "not", "in", "true", "false")
_REGEX_FLAGS = frozenset("ims")
_REGEX_DELIMITERS = "/#^|"         # Ganeti's: /x/, #x#, ^x^, |x|, each also with an "m" before it
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _kw(word: str) -> pp.Keyword:
    return pp.Keyword(word, ident_chars=_IDENT_CHARS).set_name(repr(word))


def _unescape(body: str) -> str:
    """Resolves backslash escapes inside a quoted string body."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)),
                  body, flags=re.DOTALL)


def _string_action(tokens: pp.ParseResults) -> list:
    return [_unescape(tokens[0][1:-1])]


def _number_action(tokens: pp.ParseResults) -> list:
    text = tokens[0]
    return [float(text) if re.search(r"[.eE]", text) else int(text)]


def _regex_action(text: str, loc: int, tokens: pp.ParseResults) -> list:
    literal = tokens[0][1:] if tokens[0].startswith("m") else tokens[0]
    delimiter = literal[0]
    end = literal.rindex(delimiter)
    body = literal[1:end].replace("\\" + delimiter, delimiter)
    flags = literal[end + 1:]
    bad = set(flags) - _REGEX_FLAGS
    if bad:
        raise pp.ParseFatalException(
            text, loc, f"unknown regex flag(s) {''.join(sorted(bad))!r}")
    if flags:
        body = f"(?{''.join(sorted(set(flags)))}){body}"
    try:
        re.compile(body)
    except re.error as err:
        raise pp.ParseFatalException(
            text, loc, f"invalid regular expression {body!r}: {err}") from None
    return [body]


def glob_pattern(pattern: str) -> str:
    """The regular expression of a DNS name glob (Ganeti's DnsNameGlobPattern): ``*`` is any run
    of characters and ``?`` one character, neither crossing a dot; "web*" also matches
    "web1.example.com" (the pattern matches the leftmost parts)."""
    parts = {"*": "[^.]*", "?": "[^.]"}
    return r"^%s(\..*)?$" % "".join(parts.get(c, re.escape(c)) for c in pattern)


def _condition_action(tokens: pp.ParseResults) -> list:
    toks = list(tokens)
    if len(toks) == 1:
        return [["?", toks[0]]]
    if toks[1] in ("in", "not"):  # value [not] in field
        node = ["=[]", toks[-1], toks[0]]
        return [["!", node] if toks[1] == "not" else node]
    field, op, value = toks
    if op in ("=*", "!*"):
        node = ["=~", field, glob_pattern(value)]
        return [["!", node] if op == "!*" else node]
    if op == "!~":
        return [["!", ["=~", field, value]]]
    return [["=" if op in ("==", "=") else op, field, value]]


def _chain_action(symbol: str) -> Callable[[pp.ParseResults], list]:
    def action(tokens: pp.ParseResults) -> list:
        operands = list(tokens)
        return [operands[0] if len(operands) == 1 else [symbol, *operands]]
    return action


def _not_action(tokens: pp.ParseResults) -> list:
    return [["!", tokens[-1]]]


@functools.cache
def _build_grammar() -> pp.ParserElement:
    identifier = pp.Regex(r"[a-z_][a-z0-9_./]*").set_name("a field name")
    field = identifier.add_condition(
        lambda tokens: tokens[0] not in _KEYWORDS,
        message="Expected a field name (not a keyword)")

    string = pp.Regex(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'", flags=re.DOTALL)
    string.set_parse_action(_string_action)
    number = pp.Regex(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
    number.set_parse_action(_number_action)
    boolean = (_kw("true").set_parse_action(lambda: [True])
               | _kw("false").set_parse_action(lambda: [False]))
    value = (string | number | boolean).set_name("a value")
    delimited = "|".join(rf"{re.escape(d)}(?:[^{re.escape(d)}\\]|\\.)*{re.escape(d)}" for d in _REGEX_DELIMITERS)
    regex = pp.Regex(rf"m?(?:{delimited})[a-z]*", flags=re.DOTALL)
    regex.set_name("a /regular expression/").set_parse_action(_regex_action)

    cmp_op = pp.one_of("== != <= >= < > =")     # a single "=" is Ganeti's older spelling of "=="
    re_op = pp.one_of("=~ !~")
    glob_op = pp.one_of("=* !*")
    membership = value + pp.Optional(_kw("not")) + _kw("in") - field
    comparison = field + pp.Optional((re_op - regex) | (glob_op - string) | (cmp_op - value))
    condition = (membership | comparison).set_parse_action(_condition_action)

    expr = pp.Forward()
    lpar, rpar = pp.Suppress("("), pp.Suppress(pp.Literal(")").set_name("')'"))
    atom = (lpar - expr - rpar) | condition
    negation = pp.Forward().set_name("a filter condition")
    negated = (pp.Suppress(_kw("not")) - negation).set_parse_action(_not_action)
    negation <<= (negated | atom).set_name("a filter condition")
    conjunction = negation + pp.ZeroOrMore(pp.Suppress(_kw("and")) - negation)
    disjunction = conjunction + pp.ZeroOrMore(
        pp.Suppress(_kw("or")) - conjunction)
    expr <<= disjunction.set_parse_action(_chain_action("|"))
    conjunction.set_parse_action(_chain_action("&"))
    return expr.parse_with_tabs()  # keep tabs inside strings/regexes intact


def _describe_error(text: str, err: pp.ParseBaseException) -> str:
    found = re.match(r"\S{1,20}", text[err.loc:])
    msg = err.msg
    if msg == "Expected end of text" and found:
        msg = f"unexpected {found.group(0)!r}"
        if found.group(0).startswith(")"):
            msg += " (unbalanced parentheses)"
    elif msg.startswith("Expected "):
        msg = "e" + msg[1:]
        msg += f", found {found.group(0)!r}" if found else ", found end of text"
    return f"cannot parse filter {text!r}: {msg} at column {err.loc + 1}"


def parse_filter(text: str) -> list:
    """Parses filter text into the nested list form; raises FilterError."""
    if not text or not text.strip():
        raise FilterError("cannot parse filter: empty filter text")
    try:
        return _build_grammar().parse_string(text, parse_all=True)[0]
    except pp.ParseBaseException as err:
        raise FilterError(_describe_error(text, err)) from None
    except RecursionError:
        raise FilterError(f"cannot parse filter {text[:40]!r}...:"
                          " expression is nested too deeply") from None


def names_filter(field: str, names: Sequence[str]) -> list | None:
    """Builds a filter accepting rows whose C{field} equals one of C{names}."""
    if not names:
        return None
    return ["|", *(["=", field, name] for name in names)]


# what makes a command's only argument a filter, or an argument a glob (Ganeti's qlang)
FILTER_CHARS = frozenset("!\"'()/<=>\\~ \t\n\r\x0b\x0c")
GLOB_CHARS = frozenset("*?")


def is_glob(name: str) -> bool:
    return bool(GLOB_CHARS & set(name))


def is_filter(args: Sequence[str], force: bool) -> bool:
    """Whether a list command's arguments are a filter: with ``force`` (-F), or when the only
    argument looks like one (it holds an operator, a quote or a space), as in Ganeti's CLI."""
    return force or (len(args) == 1 and bool(FILTER_CHARS & set(args[0])))


def make_filter(args: Sequence[str], force: bool, field: str = "name") -> list | None:
    """The filter of a list command's arguments, as Ganeti's CLI makes it: the filter they are
    (is_filter), else each is a name, or a glob (``web*``) matched as Ganeti's DNS name globs are."""
    if is_filter(args, force):
        return parse_filter(" ".join(args))
    if not args:
        return None
    return ["|", *(["=~", field, glob_pattern(a)] if is_glob(a) else ["=", field, a] for a in args)]


# ---------------------------------------------------------------------------
# List form -> predicate

def _is_number(value: object) -> bool:
    return isinstance(value, (int, float))


def _coerce(actual: object, expected: object) -> tuple[Any, Any] | None:
    """Brings two values to a comparable pair, or returns None."""
    if _is_number(actual) and _is_number(expected):
        return actual, expected
    if isinstance(actual, str) and isinstance(expected, str):
        return actual, expected
    try:
        if _is_number(actual) and isinstance(expected, str):
            return actual, float(expected)
        if isinstance(actual, str) and _is_number(expected):
            return float(actual), expected
    except ValueError:
        pass
    return None


def _equal(actual: object, expected: object) -> bool:
    if actual is None or expected is None:
        return actual is expected
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual == expected
    pair = _coerce(actual, expected)
    return pair[0] == pair[1] if pair else actual == expected


def _ordered(cmp: Callable[[Any, Any], bool]) -> Callable[[object, object], bool]:
    def check(actual: object, expected: object) -> bool:
        pair = _coerce(actual, expected) if actual is not None else None
        return pair is not None and cmp(*pair)
    return check


def _member(actual: object, expected: object) -> bool:
    if not isinstance(actual, (list, tuple, set, frozenset)):
        return False
    return any(_equal(item, expected) for item in actual)


_BINARY: dict[str, Callable[[object, object], bool]] = {
    "=": _equal,
    "!=": lambda a, e: not _equal(a, e),
    "<": _ordered(lambda a, e: a < e),
    "<=": _ordered(lambda a, e: a <= e),
    ">": _ordered(lambda a, e: a > e),
    ">=": _ordered(lambda a, e: a >= e),
    "=[]": _member,
}
_OPERATORS = frozenset(_BINARY) | {"=~", "?", "!", "&", "|"}


def _check_field(field: object, known: set[str] | None) -> str:
    if not isinstance(field, str) or not field:
        raise FilterError(f"invalid field name {field!r}")
    if known is not None and field not in known:
        raise FilterError(f"unknown field {field!r}")
    return field


def _compile_regex(field: str, pattern: object) -> Predicate:
    if not isinstance(pattern, str):
        raise FilterError(f"regular expression must be a string, got {pattern!r}")
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise FilterError(f"invalid regular expression {pattern!r}: {err}") from None

    def match(row: Row) -> bool:
        value = row.get(field)
        return value is not None and compiled.search(str(value)) is not None
    return match


def _compile_logical(op: str, args: list, known: set[str] | None) -> Predicate:
    if not args:
        raise FilterError(f"operator {op!r} needs at least one operand")
    parts = [_compile(arg, known) for arg in args]
    combine = all if op == "&" else any
    return lambda row: combine(part(row) for part in parts)


def _compile_unary(op: str, arg: object, known: set[str] | None) -> Predicate:
    if op == "!":
        inner = _compile(arg, known)
        return lambda row: not inner(row)
    field = _check_field(arg, known)
    return lambda row: bool(row.get(field))


def _compile_binary(op: str, args: list, known: set[str] | None) -> Predicate:
    field = _check_field(args[0], known)
    if op == "=~":
        return _compile_regex(field, args[1])
    check, expected = _BINARY[op], args[1]
    return lambda row: check(row.get(field), expected)


def _compile(node: object, known: set[str] | None) -> Predicate:
    if not isinstance(node, (list, tuple)) or not node:
        raise FilterError(f"filter must be a non-empty list, got {node!r}")
    op, args = node[0], list(node[1:])
    if not isinstance(op, str) or op not in _OPERATORS:
        raise FilterError(f"unknown filter operator {op!r}")
    if op in ("&", "|"):
        return _compile_logical(op, args, known)
    arity = 1 if op in ("!", "?") else 2
    if len(args) != arity:
        raise FilterError(f"operator {op!r} takes {arity} operand(s),"
                          f" got {len(args)}")
    if arity == 1:
        return _compile_unary(op, args[0], known)
    return _compile_binary(op, args, known)


def compile_filter(qfilter: list | None,
                   known_fields: set[str] | None = None) -> Predicate:
    """Validates a filter in list form and returns a predicate over rows.

    ``None`` accepts every row.  With ``known_fields``, any other field name
    is rejected.  Raises FilterError for unknown operators or fields, wrong
    arity and invalid regular expressions.
    """
    if qfilter is None:
        return lambda row: True
    return _compile(qfilter, known_fields)
