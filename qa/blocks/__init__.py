"""The blocks of the suite, in the order they run: each a module with ``run(ctx)``.

The order goes from reading to changing and from cheap to costly, so that a broken cluster
shows it in the first, simplest block. Every block removes the instances it created.
"""
from __future__ import annotations

from qa.blocks import cluster, cluster_admin, evacuate, instances, jobs, migration, nodes, rapi, replace_disks, storage

BLOCKS = [
    ("cluster", cluster.run),
    ("cluster-admin", cluster_admin.run),
    ("nodes", nodes.run),
    ("jobs", jobs.run),
    ("storage", storage.run),
    ("instances", instances.run),
    ("migration", migration.run),
    ("evacuate", evacuate.run),
    ("replace-disks", replace_disks.run),
    ("rapi", rapi.run),
]
NAMES = [name for name, _ in BLOCKS]
