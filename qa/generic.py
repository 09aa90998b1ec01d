"""The checks Ganeti's QA runs on every object family (its GenericQueryTest, GenericQueryFieldsTest
and tag tests), written once for the blocks that need them: a family's ``list`` and ``list-fields``
and its tags behave as Ganeti's.
"""
from __future__ import annotations

import re

from qa.context import Context
from qa.report import CheckFailed

EXIT_UNKNOWN_FIELD = 14         # Ganeti's exit code for a field it does not know
BOGUS_FIELD = "field/does/not/exist"


def nice_key(text: str) -> list:
    """Ganeti's NiceSort order: runs of digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def list_fields(ctx: Context, command: str) -> list[str]:
    """The field names ``COMMAND list-fields`` prints (no headers)."""
    out = ctx.gnt(command, "list-fields", "--no-headers", "--separator=|").stdout
    return [line.split("|", 1)[0] for line in out.splitlines() if line.strip()]


def check_list_fields(ctx: Context, command: str, used: list[str]) -> None:
    """list-fields names every field in Ganeti's order and knows ``used``; an unknown field exits 14."""
    names = list_fields(ctx, command)
    if names != sorted(names, key=nice_key):
        raise CheckFailed(f"{command} list-fields is not sorted: {names}")
    missing = [field for field in used if field not in names]
    if missing:
        raise CheckFailed(f"{command} list-fields lacks {missing}")
    code = ctx.gnt(command, "list-fields", BOGUS_FIELD, check=False).returncode
    if code != EXIT_UNKNOWN_FIELD:
        raise CheckFailed(f"{command} list-fields {BOGUS_FIELD} exited {code}, expected {EXIT_UNKNOWN_FIELD}")


def check_list(ctx: Context, command: str, namefield: str | None = "name", test_unknown: bool = True) -> None:
    """Ganeti's query checks: without names the list is sorted, with names it keeps their order,
    an unknown name fails and an unknown field exits 14."""
    if namefield:
        names = [row[0] for row in ctx.gnt_rows(command, [namefield])]
        if names != sorted(names, key=nice_key):
            raise CheckFailed(f"{command} list is not sorted by {namefield}: {names}")
        if len(names) > 1:
            wanted = names[::-1]
            shown = [row[0] for row in ctx.gnt_rows(command, [namefield], *wanted)]
            if shown != wanted:
                raise CheckFailed(f"{command} list {' '.join(wanted)} printed them in the order {shown}")
    if test_unknown:
        result = ctx.gnt(command, "list", "this.name.certainly.does.not.exist", check=False)
        if result.returncode == 0:
            raise CheckFailed(f"{command} list of a name that does not exist exited 0")
    code = ctx.gnt(command, "list", f"--output={BOGUS_FIELD}", check=False).returncode
    if code != EXIT_UNKNOWN_FIELD:
        raise CheckFailed(f"{command} list --output={BOGUS_FIELD} exited {code}, expected {EXIT_UNKNOWN_FIELD}")


def check_tags(ctx: Context, command: str, kind: str, name: str) -> None:
    """Tags of the run are added, listed, found by gnt-cluster search-tags as ``/KIND/NAME TAG``
    and removed again (Ganeti's tag QA for one object)."""
    tags = [f"{ctx.options.prefix}tag{i}" for i in range(3)]
    ctx.gnt(command, "add-tags", name, *tags)
    try:
        listed = ctx.gnt(command, "list-tags", name).stdout.split()
        if sorted(listed) != sorted(tags):
            raise CheckFailed(f"{command} list-tags {name} shows {listed}, expected {tags}")
        found = ctx.gnt("gnt-cluster", "search-tags", f"^{re.escape(ctx.options.prefix)}tag\\d$").stdout
        wanted = [f"/{kind}/{name} {tag}" for tag in tags]
        if sorted(found.splitlines()) != wanted:
            raise CheckFailed(f"gnt-cluster search-tags printed {found.splitlines()}, expected {wanted}")
    finally:
        ctx.gnt(command, "remove-tags", name, *tags)
    left = ctx.gnt(command, "list-tags", name).stdout.split()
    if left:
        raise CheckFailed(f"{command} list-tags {name} still shows {left} after remove-tags")


def refused(ctx: Context, *argv: str) -> None:
    """``argv`` must fail (exit status other than 0)."""
    result = ctx.gnt(*argv, check=False)
    if result.returncode == 0:
        raise CheckFailed(f"'{' '.join(argv)}' succeeded; it should have been refused")
