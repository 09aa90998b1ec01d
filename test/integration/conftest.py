import pytest

from loopback import LoopbackCluster


@pytest.fixture
def cluster(tmp_path):
    """A running 3-node loopback cluster, stopped afterwards."""
    c = LoopbackCluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()
