"""The drbdsetup and drbdmeta command lines of DRBD 8.4 and 9: exactly what drbdadm would run for the
resource file."""
from __future__ import annotations

import os

from genet.storage.base import StorageError
from genet.storage.drbd.resource import AFTER_SB, FENCING, HMAC_ALG, ON_IO_ERROR, PROTOCOL, VERSIONS, Resource


class Commands:
    """The drbdsetup/drbdmeta command lines for one DRBD version (what drbdadm would run)."""
    version = ""
    md_format = ""

    def __init__(self, drbdsetup: str = "drbdsetup", drbdmeta: str = "drbdmeta"):
        self.setup, self.meta = drbdsetup, drbdmeta

    def _md(self, res: Resource, *command: str) -> list[str]:
        return [self.meta, str(res.local.minor), self.md_format, res.local.meta, "flex-external", *command]

    def _net_options(self, res: Resource) -> list[str]:
        return [f"--protocol={PROTOCOL}", f"--cram-hmac-alg={HMAC_ALG}", f"--shared-secret={res.secret}",
                *[f"--{key}={value}" for key, value in AFTER_SB]]

    def create_md(self, res: Resource) -> list[str]:
        return self._md(res, "create-md", "--force")

    def wipe_md(self, res: Resource) -> list[str]:
        return self._md(res, "wipe-md", "--force")

    def md_dstate(self, res: Resource) -> list[str]:
        return self._md(res, "dstate")

    def new_resource(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "new-resource", res.name],
                [self.setup, "new-minor", res.name, str(res.local.minor), "0"]]

    def attach(self, res: Resource) -> list[list[str]]:
        return [self._md(res, "apply-al"),
                [self.setup, "attach", str(res.local.minor), res.local.data, res.local.meta, "flexible",
                 *self._disk_options()]]

    def _disk_options(self) -> list[str]:
        return [f"--fencing={FENCING}", f"--on-io-error={ON_IO_ERROR}"]

    def up(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [*self.new_resource(res), *self.attach(res), *self.connect(res, discard_my_data)]

    def connect(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [[self.setup, "connect", res.name, res.endpoint(res.local), res.endpoint(res.peer),
                 *self._net_options(res), *(["--discard-my-data"] if discard_my_data else [])]]

    def disconnect(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "disconnect", res.endpoint(res.local), res.endpoint(res.peer)]]

    def forget_peer(self, res: Resource) -> list[list[str]]:
        """Drop the peer's configuration (8.4: disconnecting already did)."""
        return []

    def primary(self, res: Resource, force: bool = False) -> list[str]:
        return [self.setup, "primary", str(res.local.minor), *(["--force"] if force else [])]

    def secondary(self, res: Resource) -> list[str]:
        return [self.setup, "secondary", str(res.local.minor)]

    def down(self, res: Resource) -> list[str]:
        return [self.setup, "down", res.name]

    def dual_primary(self, res: Resource, enabled: bool) -> list[str]:
        return [self.setup, "net-options", res.endpoint(res.local), res.endpoint(res.peer),
                f"--allow-two-primaries={'yes' if enabled else 'no'}"]

    def resize(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "resize", str(res.local.minor)], [self.setup, "check-resize", str(res.local.minor)]]


class Commands84(Commands):
    version = "8.4"
    md_format = "v08"


class Commands9(Commands):
    version = "9"
    md_format = "v09"

    def create_md(self, res: Resource) -> list[str]:
        return self._md(res, "create-md", "1", "--force")       # room for one peer

    def new_resource(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "new-resource", res.name, str(res.local.node_id)],
                [self.setup, "new-minor", res.name, str(res.local.minor), "0"]]

    def _disk_options(self) -> list[str]:
        return [f"--on-io-error={ON_IO_ERROR}"]                 # fencing is a net option in 9

    def new_peer(self, res: Resource) -> list[list[str]]:
        peer = str(res.peer.node_id)
        return [[self.setup, "new-peer", res.name, peer, f"--_name={res.peer.node}", f"--fencing={FENCING}",
                 *self._net_options(res)],
                [self.setup, "new-path", res.name, peer, res.endpoint(res.local), res.endpoint(res.peer)]]

    def up(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [*self.new_resource(res), *self.new_peer(res), *self.attach(res),
                *self.connect(res, discard_my_data)]

    def connect(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [[self.setup, "connect", res.name, str(res.peer.node_id),
                 *(["--discard-my-data"] if discard_my_data else [])]]

    def disconnect(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "disconnect", res.name, str(res.peer.node_id)]]

    def forget_peer(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "del-peer", res.name, str(res.peer.node_id)]]

    def primary(self, res: Resource, force: bool = False) -> list[str]:
        return [self.setup, "primary", res.name, *(["--force"] if force else [])]

    def secondary(self, res: Resource) -> list[str]:
        return [self.setup, "secondary", res.name]

    def dual_primary(self, res: Resource, enabled: bool) -> list[str]:
        return [self.setup, "net-options", res.name, str(res.peer.node_id),
                f"--allow-two-primaries={'yes' if enabled else 'no'}"]

    def status(self, res: Resource) -> list[str]:
        return [self.setup, "status", res.name, "--statistics", "--json"]


def commands(version: str, bindir: str | None = None) -> Commands:
    cls = {"8.4": Commands84, "9": Commands9}.get(version)
    if cls is None:
        raise StorageError(f"DRBD {version} is not supported (only {', '.join(VERSIONS)})")
    if bindir:
        return cls(os.path.join(bindir, "drbdsetup"), os.path.join(bindir, "drbdmeta"))
    return cls()
