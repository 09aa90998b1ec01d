"""Backend parameters as the gnt-* commands take them (-B): the values a job carries."""
from __future__ import annotations

from genet.cli import gnt_cluster, gnt_instance
from luxi_recorder import recorder  # noqa: F401 (a fixture)


def test_ha_and_ha_priority_are_taken_by_minus_b_of_every_command(recorder):
    """When -B names ha and ha_priority (gnt-instance add/modify, gnt-cluster modify), the job carries typed
    values; a key alone means true."""
    gnt_instance.main(["modify", "-B", "ha,ha_priority=10", "web1"])
    gnt_instance.main(["add", "-t", "diskless", "-n", "node2", "-o", "noop", "-B", "ha=true", "--no-start", "db1"])
    gnt_cluster.main(["modify", "-B", "ha=true,ha_priority=-1"])
    assert [job[0]["beparams"] for job in recorder.jobs] == [{"ha": True, "ha_priority": 10}, {"ha": True},
                                                              {"ha": True, "ha_priority": -1}]
