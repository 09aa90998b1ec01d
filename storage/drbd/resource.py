"""One DRBD resource: its two sides, its name and volumes, and the resource file genet writes
(the configuration choices are the package docstring's)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from genet.storage.base import StorageError

VERSIONS = ("8.4", "9")
META_SIZE_MIB = 128
PROTOCOL = "C"
HMAC_ALG = "sha1"
AFTER_SB = (("after-sb-0pri", "discard-zero-changes"), ("after-sb-1pri", "consensus"),
            ("after-sb-2pri", "disconnect"))
FENCING = "resource-only"
ON_IO_ERROR = "detach"
SECRET_MAX = 64                  # DRBD's SHARED_SECRET_MAX


@dataclass(frozen=True)
class Side:
    """One node's half of a resource."""
    node: str
    address: str
    minor: int
    node_id: int            # DRBD 9 node-id: the node's index in the logical_id
    data: str
    meta: str


@dataclass(frozen=True)
class Resource:
    name: str
    port: int
    secret: str
    local: Side
    peer: Side
    owner: str = ""         # "disk N of INSTANCE", for messages and the file's header

    def endpoint(self, side: Side) -> str:
        """drbdsetup's address form: ipv4:A:PORT or ipv6:[A]:PORT."""
        ip = _ip_address(side.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"ipv{ip.version}:{host}:{self.port}"

    def config_address(self, side: Side) -> str:
        ip = _ip_address(side.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"ipv{ip.version} {host}:{self.port}"


def connection_key(res: Resource) -> tuple:
    """What the connection depends on: a change means disconnecting and connecting anew."""
    return res.peer, res.port, res.secret, res.local.address, res.local.node_id


def resource_name(disk: dict) -> str:
    """Named by the disk's UUID: the same on both nodes, and untouched by renames."""
    return f"genet-{disk['uuid']}"


def volume_names(disk: dict) -> tuple[str, str]:
    return f"{disk['uuid']}_data", f"{disk['uuid']}_meta"


def check_logical_id(lid: object, what: str = "disk") -> dict:
    """The logical_id of a drbd disk, checked; StorageError says what is wrong."""
    if not isinstance(lid, dict):
        raise StorageError(f"{what} has no DRBD logical_id")
    for key in ("nodes", "addresses", "minors", "port", "secret"):
        if key not in lid:
            raise StorageError(f"{what}: logical_id lacks {key!r}")
    nodes, addresses, minors = lid["nodes"], lid["addresses"], lid["minors"]
    if not (len(nodes) == len(addresses) == len(minors) == 2) or nodes[0] == nodes[1]:
        raise StorageError(f"{what}: logical_id needs two different nodes, two addresses and two minors")
    for address in addresses:
        try:
            _ip_address(address)
        except ValueError:
            raise StorageError(f"{what}: {address!r} is not an IP address") from None
    if not all(isinstance(m, int) and 0 <= m < 1 << 20 for m in minors):
        raise StorageError(f"{what}: DRBD minors must be integers from 0 to 1048575, not {minors}")
    if not isinstance(lid["port"], int) or not 0 < lid["port"] < 65536:
        raise StorageError(f"{what}: {lid['port']!r} is not a TCP port")
    secret = lid["secret"]
    if not isinstance(secret, str) or not 0 < len(secret) <= SECRET_MAX or not re.fullmatch(r"[\x21-\x7e]+", secret) \
            or '"' in secret or "\\" in secret:
        raise StorageError(f"{what}: the shared secret must be 1 to {SECRET_MAX} printable characters"
                           " without blanks, quotes or backslashes")
    return lid


def render_config(res: Resource, version: str) -> str:
    """The resource in drbd.conf syntax for DRBD ``version`` ("8.4" or "9")."""
    if version not in VERSIONS:
        raise StorageError(f"DRBD {version} is not supported (only {', '.join(VERSIONS)})")
    net = [f"protocol {PROTOCOL};", f"cram-hmac-alg {HMAC_ALG};", f'shared-secret "{res.secret}";']
    net += [f"{key} {value};" for key, value in AFTER_SB]
    disk = [f"on-io-error {ON_IO_ERROR};"]
    (net if version == "9" else disk).append(f"fencing {FENCING};")
    lines = [f"# {res.owner or res.name}: written by genet for DRBD {version}; genet does not read it back.",
             "# allow-two-primaries is switched on only during migrations (drbdsetup net-options).",
             f"resource {res.name} {{",
             "  net {", *[f"    {line}" for line in net], "  }",
             "  disk {", *[f"    {line}" for line in disk], "  }"]
    for side in sorted((res.local, res.peer), key=lambda s: s.node_id):
        lines.append(f"  on {side.node} {{")
        if version == "9":
            lines.append(f"    node-id {side.node_id};")
        lines += [f"    device minor {side.minor};", f"    disk {side.data};", f"    meta-disk {side.meta};",
                  f"    address {res.config_address(side)};", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _ip_address(text: str):
    import ipaddress            # (here: every gnt-* command that checks a template name loads this module)
    return ipaddress.ip_address(text)
