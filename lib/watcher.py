"""genet-watcher: the periodic repairs Ganeti's watcher does, run from cron on every node.

On every node, with the cluster's maintain_node_health, it first shuts down what still runs on
the node if the node is marked offline (genet.nodemaint).

On the master it (1) restarts instances that should run but are down (ERROR_down),
giving up on one after MAX_RESTARTS failed attempts in a row, (2) runs verify-disks,
which mirrors again the disks of instances whose secondary came back (activate-disks),
(3) balances the cluster when it has automatic balancing on (genet.autobalance) and (4)
archives finished jobs older than --job-age. On other nodes it does nothing more.
``gnt-cluster watcher pause`` stops it until a given time, cluster-wide.
"""
from __future__ import annotations

import json
import logging
import sys
import time

from genet import errors, luxi, nodemaint, opcodes, paths

MAX_RESTARTS = 5               # as Ganeti's watcher: then an admin has to look
DEFAULT_JOB_AGE = 6 * 3600.0

log = logging.getLogger("genet-watcher")


def state_file():
    """Restart attempts per instance, kept between runs."""
    return paths.data_dir() / "watcher.data"


def load_state() -> dict:
    try:
        state = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {"restarts": {}}
    return state if isinstance(state.get("restarts"), dict) else {"restarts": {}}


def save_state(state: dict) -> None:
    tmp = state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(state_file())


def run_job(client: luxi.Client, op: opcodes.OpCode) -> list:
    from genet.cli.base import poll_job
    return poll_job(client, client.submit_job([op.to_dict()]),
                    feedback=lambda entry: log.info("  %s", entry[3] if len(entry) > 3 else entry))


def restart_down_instances(client: luxi.Client, state: dict) -> list[str]:
    """Start every instance that is marked up but not running on its (reachable) primary."""
    rows = client.query("instance", ["name", "status"])["data"]
    statuses = {row[0][1]: row[1][1] for row in rows}
    restarts: dict[str, int] = state["restarts"]
    for name in list(restarts):
        if statuses.get(name) != "ERROR_down":
            del restarts[name]                 # running again, stopped on purpose or gone
    started = []
    for name in sorted(n for n, status in statuses.items() if status == "ERROR_down"):
        tries = restarts.get(name, 0)
        if tries >= MAX_RESTARTS:
            log.warning("instance %s: not restarting, %d attempts failed already", name, tries)
            continue
        restarts[name] = tries + 1
        log.info("instance %s is down but should run: restarting it (attempt %d)", name, tries + 1)
        try:
            run_job(client, opcodes.OpInstanceStartup(instance_name=name))
        except errors.GenericError as err:
            log.error("instance %s: restart failed: %s", name, err)
            continue
        started.append(name)
    return started


def verify_disks(client: luxi.Client) -> list[list]:
    """verify-disks mirrors again what can be; returns its rows that are still not in sync."""
    rows = run_job(client, opcodes.OpClusterVerifyDisks())[0]
    for name, index, was, now in rows:
        if was != now:
            log.info("instance %s: disk %d was %s, now %s", name, index, was, now)
    return [row for row in rows if row[3] != "in sync"]


def balance(client: luxi.Client, state: dict, now: float) -> int:
    """The automatic balancing round, when the cluster has it on and it is due (genet.autobalance)."""
    from genet import autobalance
    from genet.htools.execute import ExecutionError
    config = client.call("QueryClusterInfo")["auto_balance"]
    if not autobalance.due(config, state.get("auto_balance_last"), now):
        return 0
    state["auto_balance_last"] = now
    save_state(state)
    try:
        return autobalance.run_round(client, config)
    except ExecutionError as err:
        log.error("auto-balance: %s", err)
        return 0


def paused_until(client: luxi.Client) -> float | None:
    [until] = client.call("QueryConfigValues", ["watcher_pause"])
    return until if until is not None and until > time.time() else None


def run(job_age: float, ignore_pause: bool = False) -> int:
    """One watcher run on this node (genet.daemons.watcher parses the options, sets up logging and
    reports a GenericError); the exit code."""
    try:
        master = paths.ssconf_file("master_node").read_text().strip()
    except OSError:
        log.info("not part of a cluster: nothing to do")
        return 0
    if nodemaint.enabled():
        nodemaint.run(ignore_pause=ignore_pause)
    if master != paths.node_name():
        return 0
    client = luxi.Client()
    until = paused_until(client)
    if until is not None and not ignore_pause:
        log.info("paused until %s: nothing done", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until)))
        return 0
    state = load_state()
    restart_down_instances(client, state)
    save_state(state)
    for name, index, _, now in verify_disks(client):
        log.warning("instance %s: disk %d stays %s", name, index, now)
    balance(client, state, time.time())
    archived, _ = client.call("AutoArchiveJobs", job_age, 30.0)
    if archived:
        log.info("archived %d jobs", archived)
    return 0


def schedule(reactor, interval: float) -> None:
    """Run the watcher every ``interval`` seconds from genet-noded (the role cron plays for
    Ganeti's watcher); a run still going when the next is due is not doubled."""
    import subprocess

    from twisted.internet import task, threads
    running = []

    def tick():
        if running:
            return
        running.append(True)
        d = threads.deferToThread(subprocess.run, [sys.executable, "-m", "genet.daemons.watcher"],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=3600)
        d.addErrback(lambda failure: log.error("genet-watcher did not run: %s", failure.getErrorMessage()))
        d.addBoth(lambda _: running.clear())
    task.LoopingCall(tick).start(interval, now=False)
