"""Resources of the master's job machinery: job filter rules (from the config) and the lock
manager's locks (gnt-debug locks), with Ganeti's fields."""
from __future__ import annotations

from typing import Any

from genet.query.common import Field, Table, attr, build_rows

FILTER_FIELDS: Table = {
    "watermark": Field("Watermark", "other", "Highest job ID used at the time when the filter was added",
                       attr("watermark")),
    "priority": Field("Priority", "other", "Filter priority", attr("priority")),
    "predicates": Field("Predicates", "other", "List of filter predicates", attr("predicates")),
    "action": Field("Action", "other", "Filter action", attr("action")),
    "reason_trail": Field("ReasonTrail", "other", "Reason why this filter was added", attr("reason_trail")),
    "uuid": Field("UUID", "other", "Filter ID", attr("uuid")),
}

LOCK_FIELDS: Table = {
    "name": Field("Name", "other", "Lock name", attr("name")),
    "mode": Field("Mode", "other", "Mode in which the lock is currently acquired (exclusive or shared)",
                  lambda lock, ctx: lock["mode"]),
    "owner": Field("Owner", "other", "Current lock owner(s)", attr("owner")),
    "pending": Field("Pending", "other", "Jobs waiting for the lock", attr("pending")),
}


def query_filters(data: dict, fields: list[str], qfilter_list: Any) -> dict:
    """The filter rules in the order the scheduler tries them (priority, watermark, uuid)."""
    from genet import filters
    return build_rows("filter", FILTER_FIELDS, filters.ordered(data.get("filters", {}).values()), None, fields,
                      qfilter_list)


def query_locks(locks: list[dict], fields: list[str], qfilter_list: Any) -> dict:
    """Rows for genet.locking.LockManager.lock_info's locks (sorted by name)."""
    return build_rows("lock", LOCK_FIELDS, sorted(locks, key=lambda lock: lock["name"]), None, fields,
                      qfilter_list)
