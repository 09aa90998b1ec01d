"""Parameter records that instances and the cluster share: backend parameters and NIC parameters
(an instance sets its own, the cluster the defaults they inherit: genet.params)."""
from __future__ import annotations

import re

from genet.ptypes import Bool, Int, OneOf, ParamType, Record, Size, String

# every backend parameter once: its type and the built-in default the cluster's own start from
_BACKEND = {"maxmem": (Size(), 128), "minmem": (Size(), 128), "vcpus": (Int(1, 256), 1),
            "auto_balance": (Bool(), True), "always_failover": (Bool(), False), "spindle_use": (Int(0), 1),
            "ha": (Bool(), False),                 # restart elsewhere when the node dies (issue 16)
            "ha_priority": (Int(), 0)}             # among those, higher restarts first
# Ganeti's ``memory`` stands for maxmem and minmem together (genet.params.normalised_beparams)
BEPARAMS = Record("beparams", {"memory": Size(), **{name: ptype for name, (ptype, _) in _BACKEND.items()}})
DEFAULT_BEPARAMS = {name: default for name, (_, default) in _BACKEND.items()}
NIC_MODES = ("bridged", "routed")         # (Ganeti's openvswitch: not in genet)
NICPARAMS = Record("nicparams", {"mode": OneOf(*NIC_MODES), "link": String(), "vlan": String()})


class MacPrefix(ParamType):
    """The first three bytes of generated MAC addresses (a cluster's, a network's): hex, of a
    unicast address (aa:00:00); stored in lower case."""
    name = "MAC prefix"
    schema = {"type": "string", "pattern": "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){2}$"}

    def check(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){2}", value):
            raise ValueError(f"{value!r} is not a MAC prefix of three octets (like aa:00:00)")
        if int(value[:2], 16) & 1:
            raise ValueError(f"invalid MAC prefix {value!r}: three hex bytes of a unicast address, like aa:00:00")
        return value.lower()
