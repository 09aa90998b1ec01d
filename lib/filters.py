"""Job filter rules (Ganeti's "optables", doc/design-optables.rst) and ad-hoc reason rate limits.

A rule (genet.objects.Filter) holds predicates on a job and an action. The master's scheduler asks
this module, for the queued jobs in their order, which may start now: the rule that *applies* to a
job is the first one, in order of (priority, watermark, uuid), whose predicates all match and whose
action is not CONTINUE. ACCEPT lets the job run, PAUSE keeps it queued, REJECT cancels it,
``["RATE_LIMIT", n]`` lets it run while fewer than n running jobs have that rule applying. Before the
rules, a job whose reason trail holds ``rate-limit:N:LABEL`` joins the bucket "N:LABEL", of which at
most N jobs run at once (ganeti(7), ``--reason``).

Predicates: ``["jobid", F]`` (field ``id``; the string "watermark" stands for the rule's
watermark), ``["opcode", F]`` (the opcode's fields, dotted for nested ones: true if one opcode of
the job matches), ``["reason", F]`` (fields ``source``, ``reason``, ``timestamp`` of any reason
trail entry of any opcode). F is a query filter (genet.qfilter's list form); genet evaluates the
whole language in all three, where Ganeti takes only comparisons in ``jobid`` and ``reason``.
"""
from __future__ import annotations

import functools
import json
import re
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from genet import errors, qfilter
from genet.objects import Filter

ACCEPT, PAUSE, REJECT, CONTINUE, RATE_LIMIT = "ACCEPT", "PAUSE", "REJECT", "CONTINUE", "RATE_LIMIT"
SIMPLE_ACTIONS = (ACCEPT, PAUSE, REJECT, CONTINUE)
PREDICATE_FIELDS: dict[str, frozenset[str] | None] = {     # predicate -> its fields (None: the opcode's)
    "jobid": frozenset({"id"}), "opcode": None, "reason": frozenset({"source", "reason", "timestamp"})}
REASON_LIMIT_PREFIX = "rate-limit:"
REASON_SOURCE = "luxid"     # the entry the master adds to a rule's reason trail (Ganeti's source name)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

JobOps = list[dict]      # what the filters read of a job: its id and its opcodes (wire form)


def check_action(action: Any) -> str | list:
    """``action`` as stored: one of SIMPLE_ACTIONS or ["RATE_LIMIT", n] with n a positive integer."""
    if isinstance(action, str) and action in SIMPLE_ACTIONS:
        return action
    if isinstance(action, list) and action[:1] == [RATE_LIMIT]:
        if len(action) == 2 and type(action[1]) is int and action[1] > 0:
            return [RATE_LIMIT, action[1]]
        raise errors.OpPrereqError("RATE_LIMIT argument must be a positive integer", errors.ECode.INVAL)
    raise errors.OpPrereqError(f"malformed filter action {action!r}: expected one of {', '.join(SIMPLE_ACTIONS)}"
                               " or [\"RATE_LIMIT\", n]", errors.ECode.INVAL)


def parse_action(text: str) -> str | list:
    """The CLI's spelling (Ganeti's): "RATE_LIMIT n" is ["RATE_LIMIT", n], anything else the name."""
    words = text.split()
    if len(words) == 2 and words[0] == RATE_LIMIT and words[1].isdigit():
        return [RATE_LIMIT, int(words[1])]
    return text


def check_predicates(predicates: Any) -> list:
    """``predicates`` as stored; a malformed one is refused naming it (nothing is stored)."""
    if not isinstance(predicates, list):
        raise errors.OpPrereqError("filter predicates must be a list", errors.ECode.INVAL)
    for predicate in predicates:
        if not (isinstance(predicate, list) and predicate and isinstance(predicate[0], str)):
            raise errors.OpPrereqError("malformed filter predicate: must be a list with the first entry being"
                                       f" a string describing the predicate type, got {predicate!r}",
                                       errors.ECode.INVAL)
        name = predicate[0]
        if name not in PREDICATE_FIELDS:
            raise errors.OpPrereqError(f"unknown filter predicate {name!r} (known: {', '.join(PREDICATE_FIELDS)})",
                                       errors.ECode.INVAL)
        if len(predicate) != 2:
            raise errors.OpPrereqError(f"malformed filter predicate: bad parameter list for {name!r} predicate:"
                                       f" {predicate[1:]!r}", errors.ECode.INVAL)
        _compile(name, predicate[1], 0)
    return predicates


def check_reason(trail: Any) -> list:
    """A reason trail: [[source, reason, nanoseconds], ...]."""
    if not isinstance(trail, list) or not all(
            isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and isinstance(e[1], str)
            and type(e[2]) is int for e in trail):
        raise errors.OpPrereqError("a reason trail is a list of [source, reason, timestamp in nanoseconds]",
                                   errors.ECode.INVAL)
    return trail


def new_rule(uuid: str | None, priority: Any, predicates: Any, action: Any, reason: Any,
             watermark: int) -> Filter:
    """A checked rule for ReplaceFilter: ``uuid`` None for a new one; its reason trail ends with
    the master's entry. Anything malformed is refused (OpPrereqError) and nothing is stored."""
    if uuid is None:
        uuid = str(uuidlib.uuid4())
    elif not isinstance(uuid, str) or not _UUID.match(uuid):
        raise errors.OpPrereqError(f"Unable to parse UUID {uuid!r}", errors.ECode.INVAL)
    if type(priority) is not int or priority < 0:
        raise errors.OpPrereqError(f"filter priority must be a non-negative integer, got {priority!r}",
                                   errors.ECode.INVAL)
    return Filter.from_wire({"uuid": uuid, "watermark": watermark, "priority": priority,
                             "predicates": check_predicates(predicates), "action": check_action(action),
                             "reason_trail": check_reason(reason) + [[REASON_SOURCE, "", time.time_ns()]]})


def _with_watermark(node: Any, watermark: int) -> Any:
    """A jobid expression with each "watermark" value replaced by the rule's watermark."""
    if isinstance(node, list) and node and node[0] in ("&", "|", "!"):
        return [node[0], *(_with_watermark(child, watermark) for child in node[1:])]
    if isinstance(node, list) and len(node) == 3 and node[2] == "watermark":
        return [node[0], node[1], watermark]
    return node


def _compile(name: str, expression: Any, watermark: int) -> Callable[[Mapping], bool]:
    return _compiled(name, json.dumps(expression, sort_keys=True), watermark)


@functools.lru_cache(maxsize=512)
def _compiled(name: str, text: str, watermark: int) -> Callable[[Mapping], bool]:
    """The predicate of an expression (by its JSON text), compiled once for every job it is tried on."""
    expression = json.loads(text)
    if name == "jobid":
        expression = _with_watermark(expression, watermark)
    known = PREDICATE_FIELDS[name]
    try:
        return qfilter.compile_filter(expression, set(known) if known is not None else None)
    except qfilter.FilterError as err:
        raise errors.OpPrereqError(f"invalid expression in filter predicate {name!r}: {err}",
                                   errors.ECode.INVAL) from None


class _Missing(Exception):
    """An opcode field a predicate names is not there: that opcode does not match (as Ganeti)."""


class _Dotted(Mapping):
    """An opcode's fields, nested ones by a dotted path ("a.b")."""

    def __init__(self, op: dict):
        self.op = op

    def __getitem__(self, key: str) -> Any:
        value: Any = self.op
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise _Missing(key)
            value = value[part]
        return value

    def get(self, key, default=None):
        return self[key]

    def __iter__(self):
        return iter(self.op)

    def __len__(self) -> int:
        return len(self.op)


def _rows(name: str, job_id: int, ops: JobOps) -> Iterable[Mapping]:
    if name == "jobid":
        return [{"id": job_id}]
    if name == "opcode":
        return [_Dotted(op) for op in ops]
    return [{"source": e[0], "reason": e[1], "timestamp": e[2]} for op in ops for e in op.get("reason") or []
            if isinstance(e, list) and len(e) == 3]


def _holds(predicate: list, watermark: int, job_id: int, ops: JobOps) -> bool:
    test = _compile(predicate[0], predicate[1], watermark)
    for row in _rows(predicate[0], job_id, ops):
        try:
            if test(row):
                return True
        except _Missing:
            continue
    return False


def ordered(rules: Iterable[Filter]) -> list[Filter]:
    """The rules in the order they are tried: priority, then watermark, then uuid."""
    return sorted(rules, key=lambda r: (r["priority"], r["watermark"], r["uuid"]))


def matches(rule: Filter, job_id: int, ops: JobOps) -> bool:
    return all(_holds(p, rule["watermark"], job_id, ops) for p in rule["predicates"])


def applying(rules: list[Filter], job_id: int, ops: JobOps) -> Filter | None:
    """The first rule (of ``ordered`` rules) matching the job whose action is not CONTINUE."""
    return next((r for r in rules if r["action"] != CONTINUE and matches(r, job_id, ops)), None)


def reason_buckets(ops: JobOps) -> set[tuple[str, int]]:
    """The ad-hoc rate-limit buckets a job belongs to: ("N:LABEL", N) for each reason
    "rate-limit:N:LABEL" with N a positive integer."""
    buckets = set()
    for op in ops:
        for entry in op.get("reason") or []:
            text = entry[1] if isinstance(entry, list) and len(entry) == 3 else None
            if not isinstance(text, str) or not text.startswith(REASON_LIMIT_PREFIX):
                continue
            count, _, _ = text[len(REASON_LIMIT_PREFIX):].partition(":")
            try:
                limit = int(count)
            except ValueError:
                continue
            if limit > 0 and ":" in text[len(REASON_LIMIT_PREFIX):]:
                buckets.add((text[len(REASON_LIMIT_PREFIX):], limit))
    return buckets


def rejected(jobs: list[tuple[int, JobOps]], rules: Iterable[Filter]) -> dict[int, str]:
    """Which of ``jobs`` a REJECT rule applies to: job id -> uuid of the rule."""
    rules = ordered(rules)
    if not any(r["action"] == REJECT for r in rules):
        return {}
    found = {job_id: applying(rules, job_id, ops) for job_id, ops in jobs}
    return {job_id: rule["uuid"] for job_id, rule in found.items() if rule is not None and rule["action"] == REJECT}


class Decision:
    """What the scheduler does with the queued jobs now: start some, cancel the rejected ones
    (with the rule that rejected each), keep the rest queued."""

    def __init__(self):
        self.start: list[int] = []
        self.reject: dict[int, str] = {}     # job id -> uuid of the rule


def schedule(queued: list[tuple[int, JobOps]], running: list[tuple[int, JobOps]], rules: Iterable[Filter],
             free: int) -> Decision:
    """Which of ``queued`` (in the order they may start: priority, then id) start in ``free`` slots,
    given the jobs ``running``, as Ganeti's scheduler decides: reason buckets first, then the rules."""
    rules = ordered(rules)
    decision = Decision()
    buckets = Counter(b for _, ops in running for b in reason_buckets(ops))
    limited = Counter()
    for job_id, ops in running:
        rule = applying(rules, job_id, ops)
        if rule is not None and isinstance(rule["action"], list):
            limited[rule["uuid"]] += 1
    rejecting = any(r["action"] == REJECT for r in rules)
    for job_id, ops in queued:
        if len(decision.start) >= free and not rejecting:
            break               # nothing more can start, and no rule may cancel the rest
        rule = applying(rules, job_id, ops)
        if rule is not None and rule["action"] == REJECT:
            decision.reject[job_id] = rule["uuid"]
            continue
        if len(decision.start) >= free:
            continue
        mine = reason_buckets(ops)
        if any(buckets[b] >= b[1] for b in mine):
            continue
        if rule is not None and rule["action"] == PAUSE:
            continue
        if rule is not None and isinstance(rule["action"], list):
            if limited[rule["uuid"]] >= rule["action"][1]:
                continue
            limited[rule["uuid"]] += 1
        buckets.update(mine)
        decision.start.append(job_id)
    return decision
