"""What a test cluster's node holds on its disk."""
from __future__ import annotations

from genet import config
from genet.objects import ConfigData


class StoredConfig:
    """For cluster classes with ``root(node)``: the config a node stores (snapshot and journal)."""

    def stored_config(self, node: str) -> ConfigData:
        return config.load(self.root(node) / "var/lib/genet/config.data")
