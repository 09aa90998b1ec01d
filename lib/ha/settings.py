"""The cluster's HA settings: automatic master failover on or off, and the timeouts of
genet.ha.timing. One definition: the opcode parameters, the stored defaults and the checks
(gnt-cluster modify) all come from here."""
from __future__ import annotations

import dataclasses

from genet import errors
from genet.ha.timing import Timing
from genet.opcodes.base import Param
from genet.ptypes import Bool, Float, Maybe, Record

DEFAULTS = {"auto_master_failover": False, "timeouts": dataclasses.asdict(Timing())}
MIN_VOTERS = 3          # a majority that survives one lost candidate
PARAMS = (
    Param("auto_master_failover", Maybe(Bool()), None, "Let a master candidate take over by itself when the"
          " master is lost (an etcd lease; needs at least three master candidates)",
          "--auto-master-failover", "yes|no"),
    Param("ha_timeouts", Maybe(Record("ha_timeouts", {f: Float(minimum=0.1) for f in Timing.fields()})), None,
          "Seconds of the HA timeouts (" + ", ".join(Timing.fields()) + ")", "--ha-timeouts", "KEY=SECONDS,..."),
)


def settings(stored: dict) -> dict:
    """The cluster's settings, defaults filled in, and the last take-over if there was one."""
    stored = stored or {}
    out = {"auto_master_failover": stored.get("auto_master_failover", DEFAULTS["auto_master_failover"]),
           "timeouts": {**DEFAULTS["timeouts"], **stored.get("timeouts", {})}}
    if "last_takeover" in stored:
        out["last_takeover"] = stored["last_takeover"]
    return out


def record_takeover(stored: dict, node: str, epoch: int, how: str, when: float) -> dict:
    """The settings with this take-over of the master role as the last one (gnt-cluster info)."""
    return {**(stored or {}), "last_takeover": {"node": node, "epoch": epoch, "how": how, "time": when}}


def timing(stored: dict) -> Timing:
    return Timing(**settings(stored)["timeouts"])


def changed(stored: dict, op, voters: list[str]) -> dict | None:
    """The setting after an OpClusterSetParams (None: untouched), checked: the timeouts must fit
    together, and automatic failover needs ``MIN_VOTERS`` master candidates (``voters``)."""
    if op.auto_master_failover is None and op.ha_timeouts is None:
        return None
    new = settings(stored)
    if op.auto_master_failover is not None:
        new["auto_master_failover"] = op.auto_master_failover
    new["timeouts"].update(op.ha_timeouts or {})
    try:
        Timing(**new["timeouts"])
    except ValueError as err:
        raise errors.OpPrereqError(f"invalid HA timeouts: {err}", errors.ECode.INVAL) from None
    if new["auto_master_failover"] and len(voters) < MIN_VOTERS:
        raise errors.OpPrereqError(
            f"automatic master failover needs at least {MIN_VOTERS} master candidates to vote, this cluster has"
            f" {len(voters)} ({', '.join(voters)}): with two, neither could tell a dead peer from a cut link."
            " Add a witness, a small machine running only genet-noded: gnt-node add --vm-capable=no NODE",
            errors.ECode.INVAL)
    return new
