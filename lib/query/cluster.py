"""Cluster fields: one row, the cluster (Ganeti's names; ``name`` is an alias of ``cluster_name``)."""
from __future__ import annotations

import platform
from typing import Any, Callable

from genet import config
from genet.query.common import NODATA, UNAVAIL, Field, Table, attr, build_rows, common_fields, with_aliases


class ClusterContext:
    def __init__(self, data: dict):
        self.data = data


def _static(value: Callable[[], Any]) -> Callable[[Any, Any], Any]:
    return lambda obj, ctx: value()


def _protocol_version() -> int:
    from genet.noded import PROTOCOL_VERSION
    return PROTOCOL_VERSION


def _os_api_version() -> int:
    from genet.osinterface import SUPPORTED_API_VERSIONS
    return max(SUPPORTED_API_VERSIONS)


def _export_version() -> int:
    from genet.cmdlib.backup import EXPORT_VERSION
    return EXPORT_VERSION


def _software_version() -> str:
    from genet import __version__
    return __version__


CLUSTER_FIELDS: Table = with_aliases({
    "cluster_name": Field("Name", "text", "Cluster name", attr("cluster_name")),
    "master_node": Field("Master", "text", "Master node name", attr("master_node")),
    "volume_group_name": Field("VgName", "text", "LVM volume group name",
                               lambda c, ctx: config.storage_params(ctx.data)["volume_group_name"] or UNAVAIL),
    "candidate_pool_size": Field("CandidatePoolSize", "number", "Master candidate pool size",
                                 attr("candidate_pool_size")),
    "architecture": Field("ArchInfo", "other", "Architecture information",
                          _static(lambda: [platform.architecture()[0], platform.machine()])),
    "drain_flag": Field("QueueDrained", "bool", "Flag whether job queue is drained", lambda c, ctx: NODATA),
    "watcher_pause": Field("WatcherPause", "timestamp", "Until when watcher is paused", attr("watcher_pause")),
    "software_version": Field("SoftwareVersion", "text", "Software version", _static(_software_version)),
    "protocol_version": Field("ProtocolVersion", "number", "RPC protocol version", _static(_protocol_version)),
    "config_version": Field("ConfigVersion", "number", "Configuration format version",
                            _static(lambda: config.CONFIG_VERSION)),
    "os_api_version": Field("OsApiVersion", "number", "API version for OS template scripts",
                            _static(_os_api_version)),
    "export_version": Field("ExportVersion", "number", "Import/export file format version",
                            _static(_export_version)),
    "vcs_version": Field("VCSVersion", "text", "VCS version", _static(_software_version)),
    **common_fields("Cluster"),
    "serial_no": Field("SerialNo", "number", "Configuration serial number", lambda c, ctx: ctx.data.serial_no),
}, [("name", "cluster_name")])


def query_cluster(data: dict, fields: list[str]) -> dict:
    return build_rows("cluster", CLUSTER_FIELDS, [data.cluster], ClusterContext(data), fields, None)
