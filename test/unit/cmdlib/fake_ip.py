"""A stand-in for iproute2's ``ip`` as genet.master_ip runs it: each node's devices and addresses
in memory (the node is the one acting, genet.paths), so that no test touches a real interface."""
from __future__ import annotations

from genet import paths


class FakeIp:
    def __init__(self, devices: tuple[str, ...] = ("eth0", "eth1")):
        self.devices = devices
        self.addresses: dict[str, dict[str, list[str]]] = {}     # node -> device -> ["ADDRESS/NETMASK"]
        self.calls: list[list[str]] = []

    def of(self, node: str) -> dict[str, list[str]]:
        return self.addresses.setdefault(node, {dev: [] for dev in self.devices})

    def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(argv)
        table = self.of(paths.node_name())
        match argv:
            case ["ip", "-o", "address", "show", *rest]:
                devices = [rest[1]] if rest else list(table)
                if any(d not in table for d in devices):
                    return 1, f'Device "{rest[1]}" does not exist.\n'
                return 0, "".join(f"2: {d}    inet {a} scope global {d}:0\\       valid_lft forever\n"
                                  for d in devices for a in table[d])
            case ["ip", "address", "add", address, "dev", dev, *_]:
                if dev not in table:
                    return 1, "Cannot find device\n"
                if address in table[dev]:
                    return 2, "RTNETLINK answers: File exists\n"
                table[dev].append(address)
                return 0, ""
            case ["ip", "address", "del", address, "dev", dev, *_]:
                if dev not in table or address not in table[dev]:
                    return 2, "RTNETLINK answers: Cannot assign requested address\n"
                table[dev].remove(address)
                return 0, ""
            case ["ip", "link", "show", "dev", dev]:
                return (0, f"2: {dev}: <UP>\n") if dev in table else (1, f'Device "{dev}" does not exist.\n')
        raise AssertionError(f"unexpected command {argv}")
