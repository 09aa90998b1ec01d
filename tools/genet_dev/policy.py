"""The instance policy genet's test clusters are made with (dev-cluster, the demo, the loopback
and in-process test clusters).

Ganeti's default policy (genet's too) refuses instances below 128 MiB of memory or 1 GiB of
disk; the test guests are far smaller (4 MiB disks, 64 MiB of memory) so that tests copy and
sync little. Ganeti's own QA does the same: its cluster init sets the bounds from its QA
config (``ispec_*``). Everything else of the policy stays the default.
"""
from __future__ import annotations

# bounds wide enough for every test instance (tests of too much memory or disk expect the
# nodes to say so, not the policy)
TEST_BOUNDS = {
    "min": {"memory-size": 1, "cpu-count": 0, "disk-count": 0, "disk-size": 1, "nic-count": 0, "spindle-use": 0},
    "max": {"memory-size": 1024 ** 3, "cpu-count": 256, "disk-count": 16, "disk-size": 1024 ** 3, "nic-count": 8,
            "spindle-use": 256},
}
TEST_IPOLICY = {"minmax": [TEST_BOUNDS]}


def init_options() -> list[str]:
    """The gnt-cluster init options that set TEST_IPOLICY."""
    sides = "/".join(f"{side}:" + ",".join(f"{spec}={value}" for spec, value in TEST_BOUNDS[side].items())
                     for side in ("min", "max"))
    return [f"--ipolicy-bounds-specs={sides}"]
