"""Resources whose rows others report: jobs (the job queue), exports (the nodes) and OS
definitions (OpOsDiagnose); their rows arrive as one dict of values per item."""
from __future__ import annotations

from typing import Any, Callable

from genet.jobs import JOB_FIELDS
from genet.query.common import NODATA, OFFLINE, UNAVAIL, Field, Table, build_rows, filter_fields


def _row_value(key: str) -> Callable[[dict, Any], Any]:
    """A field of a resource whose rows arrive as dicts of values already (jobs, exports, OSes)."""
    return lambda row, ctx: row.get(key, UNAVAIL)


# jobs: genet.jobs names and reads them; the query layer shows them
JOB_QUERY_FIELDS: Table = {name: Field(title, kind, doc, _row_value(name))
                           for name, (title, kind, doc) in JOB_FIELDS.items()}

EXPORT_FIELDS: Table = {
    "node": Field("Node", "text", "Node name", _row_value("node")),
    "export": Field("Export", "text", "Export name", _row_value("export")),
}

OS_FIELDS: Table = {
    "name": Field("Name", "text", "Operating system name", _row_value("name")),
    "valid": Field("Valid", "bool", "Whether operating system definition is valid", _row_value("valid")),
    "hidden": Field("Hidden", "bool", "Whether operating system is hidden", _row_value("hidden")),
    "blacklisted": Field("Blacklisted", "bool", "Whether operating system is blacklisted",
                         _row_value("blacklisted")),
    "variants": Field("Variants", "other", "Operating system variants", _row_value("variants")),
    "api_versions": Field("ApiVersions", "other", "Operating system API versions", _row_value("api_versions")),
    "parameters": Field("Parameters", "other", "Operating system parameters", _row_value("parameters")),
    "node_status": Field("NodeStatus", "other", "Status from node", _row_value("node_status")),
    "os_hvp": Field("OsHypervisorParams", "other", "Operating system specific hypervisor parameters",
                    _row_value("os_hvp")),
    "osparams": Field("OsParameters", "other", "Operating system specific parameters", _row_value("osparams")),
    "trusted": Field("Trusted", "bool", "Whether this OS is trusted", _row_value("trusted")),
}


def query_os(entries: list[dict], fields: list[str], qfilter_list: Any) -> dict:
    """Rows for the OS definitions OpOsDiagnose reports (one dict per OS), sorted by name; what it
    does not report is shown as Ganeti's defaults (not hidden, not blacklisted, trusted)."""
    defaults = {"hidden": False, "blacklisted": False, "trusted": True, "os_hvp": {}, "osparams": {}}
    rows = [{**defaults, **entry} for entry in sorted(entries, key=lambda e: e["name"])]
    return build_rows("os", OS_FIELDS, rows, None, fields, qfilter_list)


def query_jobs(rows: list[list | None], ids: list[int], fields: list[str], qfilter_list: Any) -> dict:
    """Rows for jobs from JobQueue.query, which read every field in ``fields`` and then those the
    filter names (in sorted order); a job that is gone (None) has no row."""
    extra = sorted(filter_fields(qfilter_list) - set(fields))
    jobs = [dict(zip(fields + extra, row)) for row in rows if row is not None]
    return build_rows("job", JOB_QUERY_FIELDS, jobs, None, fields, qfilter_list)


def query_exports(data: dict, fields: list[str], qfilter_list: Any,
                  live: Callable[[dict[str, str]], dict[str, list | None]]) -> dict:
    """Rows (node, export); ``live`` asks the online nodes for their export lists ({node: names or None}).

    A node that is offline or does not answer gives one row whose export is RS_OFFLINE or RS_NODATA.
    """
    nodes = sorted(data.nodes.values(), key=lambda n: n["name"])
    online = {n["name"]: n["primary_ip"] for n in nodes if not n["offline"]}
    reports = live(online) if online else {}
    rows = []
    for node in nodes:
        names = reports.get(node["name"])
        if node["offline"] or names is None:
            rows.append({"node": node["name"], "export": OFFLINE if node["offline"] else NODATA})
        else:
            rows += [{"node": node["name"], "export": name} for name in names]
    return build_rows("export", EXPORT_FIELDS, rows, None, fields, qfilter_list)
