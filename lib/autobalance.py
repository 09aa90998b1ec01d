"""A cluster that balances itself: the settings, and the watcher's balancing round.

Off by default. When on (``gnt-cluster modify --auto-balance yes``), genet-watcher on the
master runs hbal's algorithm every ``interval`` minutes on every node group whose score is
more than ``threshold`` above the best its N+1 reservations allow, makes at most
``max_moves`` moves, each an ordinary job in the queue (visible in ``gnt-job list``,
cancellable), at most ``max_migrations`` of them at once. It never moves an instance tagged
STAY_TAG or whose ``auto_balance`` backend parameter is off, nor one with a node that is
offline or drained, and never moves anything onto such a node. With ``usage`` on
(``--auto-balance-usage yes``) the score weighs what the instances really use, from the
master's usage history (genet.usage, as hbal --mond=yes), instead of Ganeti's default loads.
"""
from __future__ import annotations

import logging

from genet.opcodes.base import Param
from genet.ptypes import Bool, Float, Int, Maybe

STAY_TAG = "genet:auto-balance:stay"
DEFAULTS = {"enabled": False, "interval": 30, "threshold": 1.0, "max_moves": 10, "max_migrations": 2,
            "usage": False}
# opcode parameter -> key of the cluster's auto_balance setting
KEYS = {"auto_balance": "enabled", "auto_balance_interval": "interval", "auto_balance_threshold": "threshold",
        "auto_balance_max_moves": "max_moves", "auto_balance_max_migrations": "max_migrations",
        "auto_balance_usage": "usage"}
PARAMS = (
    Param("auto_balance", Maybe(Bool()), None, "Let the watcher balance the cluster by itself",
          "--auto-balance", "yes|no"),
    Param("auto_balance_interval", Maybe(Int(1, 7 * 24 * 60)), None,
          "Minutes between two automatic balancing rounds", "--auto-balance-interval", "MINUTES"),
    Param("auto_balance_threshold", Maybe(Float(minimum=0.0)), None, "Balance a node group only when its"
          " score is this much above the best it can reach", "--auto-balance-threshold", "SCORE"),
    Param("auto_balance_max_moves", Maybe(Int(1, 1000)), None, "Most moves in one automatic balancing round",
          "--auto-balance-max-moves", "N"),
    Param("auto_balance_max_migrations", Maybe(Int(1, 64)), None, "Most moves of a round running at once",
          "--auto-balance-max-migrations", "N"),
    Param("auto_balance_usage", Maybe(Bool()), None, "Score by what the instances really use (recent CPU,"
          " memory, disk and network use and its trend) instead of their declared sizes",
          "--auto-balance-usage", "yes|no"),
)

log = logging.getLogger("genet-watcher")


def settings(stored: dict) -> dict:
    """The cluster's settings, defaults filled in."""
    return {**DEFAULTS, **(stored or {})}


def changed(stored: dict, op) -> dict | None:
    """The setting after an OpClusterSetParams, or None when the opcode does not touch it."""
    given = {key: getattr(op, param) for param, key in KEYS.items() if getattr(op, param) is not None}
    return {**settings(stored), **given} if given else None


def due(config: dict, last: float | None, now: float) -> bool:
    return bool(config["enabled"]) and (last is None or now - last >= config["interval"] * 60)


def plan(data, config: dict, util: dict | None = None) -> tuple[object, list]:
    """The moves of one round: for each node group whose score is above the threshold, hbal's
    moves among the instances that may move, at most max_moves in all. (state, steps).
    ``util``: the instances' loads ({name: (cpu, mem, disk, net)}) when scoring by usage."""
    from genet.htools import metrics
    from genet.htools.balance import Balancer
    from genet.htools.state import NO_NODE, State
    from genet.htools.nodevals import INDEX
    st = State(data, util=util)
    offline = st.F[INDEX["offline"]].astype(bool)
    for inst in st.instances:        # never touch what stays, or what lives on an unavailable node
        if STAY_TAG in inst.tags or any(n != NO_NODE and offline[n] for n in (inst.pnode, inst.snode)):
            inst.movable = False
    steps: list = []
    for _, members in st.groups_nodes():
        room = config["max_moves"] - len(steps)
        if room <= 0:
            break
        bal = Balancer(st, members)
        optimum = metrics.optimal_score(st, members)
        if bal.score.total() - optimum <= config["threshold"]:
            continue
        steps += bal.run(room, optimum)
    return st, steps


def run_round(client, config: dict) -> int:
    """One balancing round through the master daemon; the number of moves made."""
    from genet.htools import execute, live
    data = live.read(client)
    util = None
    if config.get("usage"):
        from genet import errors
        from genet.htools import mond
        try:
            util = mond.from_history(client.call("QueryUsage"), data, say=log.warning).util
        except errors.GenericError as err:
            log.warning("auto-balance: no usage history (%s): scoring by declared sizes", err)
    st, steps = plan(data, config, util)
    if not steps:
        log.info("auto-balance: every node group is balanced")
        return 0
    log.info("auto-balance: %d moves", len(steps))
    done = execute.carry_out(client, st, steps, "genet-watcher auto-balance",
                             max_parallel=config["max_migrations"], say=log.info)
    return done
