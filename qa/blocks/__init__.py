"""The blocks of the suite, in the order they run: each a module with ``run(ctx)``.

The order goes from reading to changing and from cheap to costly, so that a broken cluster
shows it in the first, simplest block. Every block removes the instances it created.
"""
from __future__ import annotations

from qa.blocks import (backup, cluster, cluster_admin, debug, evacuate, filters, global_options, groups, instances,
                       jobs, migration, networks, nodes, oses, rapi, replace_disks, storage)

BLOCKS = [
    ("cluster", cluster.run),
    ("cluster-admin", cluster_admin.run),
    ("nodes", nodes.run),
    ("jobs", jobs.run),
    ("filters", filters.run),
    ("debug", debug.run),
    ("storage", storage.run),
    ("os", oses.run),
    ("groups", groups.run),
    ("networks", networks.run),
    ("global-options", global_options.run),
    ("instances", instances.run),
    ("backup", backup.run),
    ("migration", migration.run),
    ("evacuate", evacuate.run),
    ("replace-disks", replace_disks.run),
    ("rapi", rapi.run),
]
NAMES = [name for name, _ in BLOCKS]
