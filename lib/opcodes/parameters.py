"""Parameter records that instances and the cluster share: backend parameters and NIC parameters
(an instance sets its own, the cluster the defaults they inherit: genet.params)."""
from __future__ import annotations

from genet.ptypes import Bool, Int, OneOf, Record, Size, String

BEPARAMS = Record("beparams", {"memory": Size(), "maxmem": Size(), "minmem": Size(),
                               "vcpus": Int(1, 256), "auto_balance": Bool()})
NIC_MODES = ("bridged", "routed")         # (Ganeti's openvswitch: not in genet)
NICPARAMS = Record("nicparams", {"mode": OneOf(*NIC_MODES), "link": String(), "vlan": String()})
