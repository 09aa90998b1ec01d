"""gnt-filter: the job filter rules the master's scheduler applies (see genet.filters)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from genet import filters, luxi
from genet.cli import base

DEFAULT_FIELDS = ["uuid", "watermark", "priority", "predicates", "action", "reason_trail"]


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"invalid JSON: {err}") from None


def _reason(ns) -> list:
    """The rule's reason trail as Ganeti's CLI starts it: the user's --reason, if any."""
    return [["gnt:user", ns.reason, time.time_ns()]] if ns.reason else []


class _ListClient(luxi.Client):
    """Shows the rules' lists (predicates, action, reason trail) as Ganeti's list does: as Python
    shows them, nested brackets kept, not joined with commas."""

    def query(self, what: str, fields: list[str], qfilter=None) -> dict:
        result = super().query(what, fields, qfilter)
        for row in result["data"]:
            for cell in row:
                if cell[0] == 0 and isinstance(cell[1], list):
                    cell[1] = str(cell[1])
        return result


def _replace(ns, uuid: str | None) -> int:
    print(luxi.Client().call("ReplaceFilter", uuid, ns.priority, ns.predicates, ns.action, _reason(ns)))
    return 0


def cmd_info(ns) -> int:
    rows = luxi.Client().call("QueryFilters", ns.uuids or None, DEFAULT_FIELDS)
    for uuid, watermark, priority, predicates, action, reason_trail in rows:
        print(f"UUID: {uuid}")
        print(f"  Watermark: {watermark}")
        print(f"  Priority: {priority}")
        print(f"  Predicates: {predicates}")
        print(f"  Action: {action}")
        print(f"  Reason trail: {reason_trail}")
    return 0


def cmd_delete(ns) -> int:
    luxi.Client().call("DeleteFilter", ns.uuid)
    return 0


def _rule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--priority", type=int, default=0,
                        help="Priority for filter processing (non-negative, lower first; default 0)")
    parser.add_argument("--predicates", type=_json, default=[],
                        help="List of predicates in the Ganeti query language, given as a JSON list")
    parser.add_argument("--action", type=filters.parse_action, default=filters.CONTINUE,
                        help="The effect of the filter: ACCEPT, PAUSE, REJECT, CONTINUE (the default) or"
                        " 'RATE_LIMIT n' with n a positive integer")


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.command(sub, "add", "Adds a new filter rule and prints its UUID", lambda ns: _replace(ns, None))
    _rule_options(p)
    p = base.command(sub, "replace", "Replaces a filter rule, or creates it with this UUID",
                     lambda ns: _replace(ns, ns.uuid))
    _rule_options(p)
    p.add_argument("uuid", metavar="FILTER_UUID")
    p = base.command(sub, "delete", "Removes a filter rule", cmd_delete)
    p.add_argument("uuid", metavar="FILTER_UUID")
    p = base.command(sub, "list", "Lists the job filter rules",
                     lambda ns: base.run_list(ns, "filter", DEFAULT_FIELDS, name_field="uuid", client=_ListClient()))
    base.add_list_options(p, "FILTER_UUID")
    p = base.command(sub, "list-fields", "Lists all available fields for filters",
                     lambda ns: base.run_list_fields(ns, "filter"))
    base.add_list_fields_options(p)
    p = base.command(sub, "info", "Shows information about the filter(s)", cmd_info)
    p.add_argument("uuids", nargs="*", metavar="FILTER_UUID")


def main(argv=None) -> int:
    return base.run("gnt-filter", build, argv)


if __name__ == "__main__":
    sys.exit(main())
