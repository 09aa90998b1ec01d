"""Query2: the fields of every resource and the rows of a query, in Ganeti's shape
(``{"fields": [definitions], "data": [[[status, value], ...], ...]}``).

One module per resource; the instance, node and group tables include families derived when
asked (hv/, be/, ndp/ from the parameter tables, indexed disk and NIC fields, aliases).
"""
from __future__ import annotations

from typing import Callable

from genet import errors
from genet.query.cluster import CLUSTER_FIELDS, query_cluster
from genet.query.common import (RS_NODATA, RS_NORMAL, RS_OFFLINE, RS_UNAVAIL, RS_UNKNOWN, Field, Table,
                                filter_fields)
from genet.query.group import GROUP_FIELDS, group_fields, query_groups
from genet.query.instance import INSTANCE_FIELDS, instance_fields, instance_status, query_instances
from genet.query.network import NETWORK_FIELDS, query_networks
from genet.query.queue import FILTER_FIELDS, LOCK_FIELDS, query_filters, query_locks
from genet.query.node import NODE_FIELDS, node_fields, query_nodes
from genet.query.reported import (EXPORT_FIELDS, JOB_QUERY_FIELDS, OS_FIELDS, query_exports, query_jobs,
                                  query_os)
from genet.query import common

# resource -> its whole field table (built when asked: the families follow the registries)
RESOURCES: dict[str, Callable[[], Table]] = {
    "instance": instance_fields, "node": node_fields, "group": group_fields,
    "network": lambda: NETWORK_FIELDS, "cluster": lambda: CLUSTER_FIELDS, "job": lambda: JOB_QUERY_FIELDS,
    "export": lambda: EXPORT_FIELDS, "os": lambda: OS_FIELDS, "filter": lambda: FILTER_FIELDS,
    "lock": lambda: LOCK_FIELDS,
}


def fields_of(what: str) -> Table:
    try:
        return RESOURCES[what]()
    except KeyError:
        raise errors.OpPrereqError(f"unknown query resource {what!r} (known: {', '.join(sorted(RESOURCES))})",
                                   errors.ECode.INVAL) from None


def field_definitions(what: str, names: list[str] | None) -> list[dict]:
    """Definitions of ``names`` (all fields, sorted, when none), unknown ones as kind "unknown"."""
    return common.definitions(fields_of(what), names)


def check_fields(what: str, names: list[str]) -> None:
    fields = fields_of(what)
    unknown = [n for n in names if n not in fields]
    if unknown:
        raise errors.ParameterError(f"unknown {what} field(s): {', '.join(unknown)}")


__all__ = ["CLUSTER_FIELDS", "EXPORT_FIELDS", "FILTER_FIELDS", "Field",
           "GROUP_FIELDS", "INSTANCE_FIELDS", "JOB_QUERY_FIELDS", "LOCK_FIELDS", "NETWORK_FIELDS", "NODE_FIELDS",
           "OS_FIELDS", "RESOURCES",
           "RS_NODATA", "RS_NORMAL", "RS_OFFLINE", "RS_UNAVAIL", "RS_UNKNOWN", "check_fields",
           "field_definitions", "fields_of", "filter_fields", "group_fields", "instance_fields",
           "instance_status", "node_fields", "query_cluster", "query_exports", "query_groups",
           "query_filters", "query_instances", "query_jobs", "query_locks", "query_networks", "query_nodes",
           "query_os"]
