"""/metrics: Prometheus text format via prometheus-client.

RAPI's own counters live here; the queue's figures (jobs by status, job latency)
and the cluster's (nodes by role, instances by status) are read from masterd at
each scrape, so they are never stale and nothing is counted twice.
"""
from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from genet import errors

log = logging.getLogger("genet-rapi")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NODE_ROLES = {"M": "master", "C": "candidate", "R": "regular", "D": "drained", "O": "offline"}


class ClusterCollector:
    """Collects from masterd over luxi; a master that does not answer gives genet_up 0."""

    def __init__(self, call):
        self.call = call

    def collect(self):
        up = GaugeMetricFamily("genet_master_up", "Whether masterd answered this scrape")
        try:
            queue = self.call("QueryMetrics")
            nodes = self.call("Query", "node", ["role"], None)["data"]
            instances = self.call("Query", "instance", ["status"], None)["data"]
        except errors.GenericError as err:
            log.warning("metrics: masterd did not answer: %s", err)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("genet_jobs", "Jobs in the queue (not archived) by status", labels=["status"])
        for status in ("queued", "waiting", "running", "canceling", "success", "error", "canceled"):
            jobs.add_metric([status], queue["jobs"].get(status, 0))
        yield jobs
        latency = queue["job_latency"]
        hist = HistogramMetricFamily("genet_job_latency_seconds",
                                     "Seconds from job submission to its end (since masterd started)")
        hist.add_metric([], [(repr(float(b)), c) for b, c in latency["buckets"]] + [("+Inf", latency["count"])],
                        sum_value=latency["sum"])
        yield hist
        by_role = GaugeMetricFamily("genet_nodes", "Nodes by role", labels=["role"])
        counts = {role: 0 for role in NODE_ROLES.values()}
        for (_, role), in nodes:
            counts[NODE_ROLES.get(role, "regular")] += 1
        for role, count in counts.items():
            by_role.add_metric([role], count)
        yield by_role
        by_status = GaugeMetricFamily("genet_instances", "Instances by status", labels=["status"])
        statuses: dict[str, int] = {}
        for (_, status), in instances:
            statuses[status or "unknown"] = statuses.get(status or "unknown", 0) + 1
        for status, count in sorted(statuses.items()):
            by_status.add_metric([status], count)
        yield by_status
        yield from collector_metrics(queue.get("data_collectors", {}))


# the diskstats fields shown (Ganeti's names) -> metric name and help
DISK_METRICS = {"readsNum": ("genet_node_disk_reads", "Reads completed by a node's block device"),
                "writes": ("genet_node_disk_writes", "Writes completed by a node's block device"),
                "secRead": ("genet_node_disk_sectors_read", "Sectors read by a node's block device"),
                "secWritten": ("genet_node_disk_sectors_written", "Sectors written by a node's block device"),
                "timeIO": ("genet_node_disk_io_milliseconds", "Milliseconds a node's block device spent on I/O")}


# inst-usage's per-instance figures (genet.inst_usage)
INSTANCE_METRICS = {"cpu": ("genet_instance_cpu", "CPUs an instance's process kept busy over the inst-usage"
                            " collector's interval"),
                    "memory": ("genet_instance_memory_bytes", "Resident memory of an instance's process"),
                    "disk": ("genet_instance_disk_bytes_per_second", "Bytes per second an instance's process read"
                             " and wrote to storage"),
                    "net": ("genet_instance_net_bytes_per_second", "Bytes per second through an instance's taps")}


def collector_metrics(reports: dict):
    """The nodes' data collector reports ({node: {collector: report}}): a deactivated collector
    reports nowhere, so its metrics are absent."""
    load = GaugeMetricFamily("genet_node_cpu_load", "Busy share of a node's CPU (cpu total: all of them) over"
                             " the cpu-avg-load collector's interval", labels=["node", "cpu"])
    disks = {key: GaugeMetricFamily(name, text, labels=["node", "device"]) for key, (name, text) in DISK_METRICS.items()}
    usage = {key: GaugeMetricFamily(name, text, labels=["node", "instance"])
             for key, (name, text) in INSTANCE_METRICS.items()}
    seen = set()
    for node, found in sorted(reports.items()):
        for name, report in (found or {}).items():
            if report is None:
                continue
            seen.add(name)
            data = report["data"]
            if name == "cpu-avg-load":
                load.add_metric([node, "total"], data["cpu_total"])
                for index, value in enumerate(data["cpus"]):
                    load.add_metric([node, str(index)], value)
            elif name == "diskstats":
                for device in data:
                    for key, family in disks.items():
                        family.add_metric([node, device["name"]], device[key])
            elif name == "inst-usage":
                for instance, measured in sorted(data["instances"].items()):
                    for key, family in usage.items():
                        family.add_metric([node, instance], measured[key])
    if "cpu-avg-load" in seen:
        yield load
    if "diskstats" in seen:
        yield from disks.values()
    if "inst-usage" in seen:
        yield from usage.values()


class Metrics:
    def __init__(self, call):
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self.requests = Counter("genet_rapi_requests", "RAPI requests by method and HTTP status",
                                ["method", "code"], registry=self.registry)
        self.seconds = Histogram("genet_rapi_request_seconds", "Time to answer a RAPI request",
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0))
        self.registry.register(ClusterCollector(call))

    def observe(self, method: str, code: int, seconds: float) -> None:
        self.requests.labels(method if method in ("GET", "PUT", "POST", "DELETE") else "other", str(code)).inc()
        self.seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
