"""Name resolution: a hosts table of our own (``GENET_HOSTS``) first, then DNS."""
from __future__ import annotations

import ipaddress
import socket

from genet import errors, paths


def _hosts_table() -> dict[str, str]:
    path = paths.hosts_file()
    table: dict[str, str] = {}
    if path is None:
        return table
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return table
    for line in lines:
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            table.setdefault(name, fields[0])
    return table


def resolve(name: str) -> str:
    """The IPv4 address of ``name``; raises OpPrereqError naming it if unknown."""
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    address = _hosts_table().get(name)
    if address:
        return address
    try:
        return socket.gethostbyname(name)
    except OSError as err:
        raise errors.OpPrereqError(f"cannot resolve host name {name!r}: {err}",
                                   errors.ECode.RESOLVER) from None
