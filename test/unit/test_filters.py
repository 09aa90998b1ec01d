"""genet.filters: which rule applies to a job, and what the scheduler starts, rejects and holds."""
from __future__ import annotations

import pytest

from genet import errors, filters
from genet.objects import Filter


def rule(uuid: str, predicates: list, action, priority: int = 0, watermark: int = 10) -> Filter:
    return Filter.from_wire({"uuid": uuid, "watermark": watermark, "priority": priority, "predicates": predicates,
                             "action": action, "reason_trail": []})


def op(op_id: str = "OP_TEST_DELAY", reason: list | None = None, **fields) -> dict:
    return {"OP_ID": op_id, "reason": reason or [], **fields}


def test_jobid_compares_with_the_rules_watermark():
    drain = rule("a", [["jobid", [">", "id", "watermark"]]], "REJECT", watermark=10)
    assert not filters.matches(drain, 10, [op()]) and filters.matches(drain, 11, [op()])


def test_opcode_matches_when_one_opcode_does_and_reaches_nested_fields():
    create = rule("a", [["opcode", ["=", "OP_ID", "OP_INSTANCE_CREATE"]]], "REJECT")
    assert filters.matches(create, 1, [op(), op("OP_INSTANCE_CREATE")]) and not filters.matches(create, 1, [op()])
    nested = rule("b", [["opcode", ["=", "beparams.vcpus", 4]]], "PAUSE")
    assert filters.matches(nested, 1, [op(beparams={"vcpus": 4})])
    absent = rule("c", [["opcode", ["!", ["=", "beparams.vcpus", 4]]]], "PAUSE")
    assert not filters.matches(absent, 1, [op()])       # an opcode without the field does not match


def test_reason_matches_any_entry_of_any_opcode_with_regexes():
    bunny = rule("a", [["reason", ["=~", "reason", "pink bunny"]]], "ACCEPT")
    assert filters.matches(bunny, 1, [op(), op(reason=[["gnt:user", "maintenance pink bunny", 5]])])
    assert not filters.matches(bunny, 1, [op(reason=[["gnt:user", "other", 5]])])


def test_the_applying_rule_is_the_first_match_in_order_that_does_not_continue():
    rules = filters.ordered([rule("z", [], "REJECT", priority=1), rule("b", [], "PAUSE", priority=0, watermark=5),
                             rule("a", [], "CONTINUE", priority=0, watermark=5), rule("c", [], "ACCEPT", priority=0,
                                                                                          watermark=3)])
    assert [r["uuid"] for r in rules] == ["c", "a", "b", "z"]
    assert filters.applying(rules, 1, [op()])["uuid"] == "c"
    assert filters.applying(rules[1:], 1, [op()])["uuid"] == "b"


def test_reason_buckets_are_rate_limit_n_label():
    ops = [op(reason=[["gnt:user", "rate-limit:4:evac node3", 1], ["gnt:user", "rate-limit:0:x", 1],
                      ["gnt:user", "rate-limit:two:x", 1], ["gnt:user", "rate-limit:3", 1]])]
    assert filters.reason_buckets(ops) == {("4:evac node3", 4)}


def test_schedule_applies_rules_buckets_and_free_slots():
    limit = rule("rl", [["opcode", ["=", "OP_ID", "OP_INSTANCE_REPLACE_DISKS"]]], ["RATE_LIMIT", 2])
    reject = rule("rj", [["opcode", ["=", "OP_ID", "OP_INSTANCE_CREATE"]]], "REJECT", priority=1)
    bucket = [["gnt:user", "rate-limit:1:x", 1]]
    running = [(1, [op("OP_INSTANCE_REPLACE_DISKS")]), (2, [op(reason=bucket)])]
    queued = [(3, [op("OP_INSTANCE_REPLACE_DISKS")]), (4, [op("OP_INSTANCE_REPLACE_DISKS")]),
              (5, [op(reason=bucket)]), (6, [op("OP_INSTANCE_CREATE")]), (7, [op()]), (8, [op()])]
    decision = filters.schedule(queued, running, [limit, reject], free=2)
    assert decision.start == [3, 7] and decision.reject == {6: "rj"}


@pytest.mark.parametrize("action, message", [("accept", "malformed"), (["RATE_LIMIT"], "positive integer"),
                                             (["RATE_LIMIT", 1.5], "positive integer"), (5, "malformed")])
def test_malformed_actions_are_refused(action, message):
    with pytest.raises(errors.OpPrereqError, match=message):
        filters.check_action(action)


def test_the_cli_spelling_of_a_rate_limit():
    assert filters.parse_action("RATE_LIMIT 10") == ["RATE_LIMIT", 10]
    assert filters.parse_action("PAUSE") == "PAUSE"
