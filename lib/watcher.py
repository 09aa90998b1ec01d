"""genet-watcher: the periodic repairs Ganeti's watcher does, run from cron on every node.

On the master it (1) restarts instances that should run but are down (ERROR_down),
giving up on one after MAX_RESTARTS failed attempts in a row, (2) runs verify-disks,
which mirrors again the disks of instances whose secondary came back (activate-disks),
and (3) archives finished jobs older than --job-age. On other nodes it does nothing.
``gnt-cluster watcher pause`` stops it until a given time, cluster-wide.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from genet import errors, luxi, opcodes, paths

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


def paused_until(client: luxi.Client) -> float | None:
    [until] = client.call("QueryConfigValues", ["watcher_pause"])
    return until if until is not None and until > time.time() else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genet-watcher", description=__doc__.splitlines()[0])
    p.add_argument("-d", "--debug", action="store_true", help="Log to standard error as well")
    p.add_argument("-A", "--job-age", default="6h", metavar="AGE",
                   help="Archive finished jobs older than AGE (s, m, h, d, w; 'all'; default 6h)")
    p.add_argument("--ignore-pause", action="store_true", help="Run even if the watcher is paused")
    return p


def main(argv: list[str] | None = None) -> int:
    from genet.cli.gnt_job import parse_age
    ns = build_parser().parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)] if ns.debug else []
    try:
        paths.log_dir().mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(paths.log_dir() / "watcher.log"))
    except OSError:              # no log directory: standard error instead
        handlers = [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(name)s: %(message)s")
    try:
        age = parse_age(ns.job_age)
        try:
            master = paths.ssconf_file("master_node").read_text().strip()
        except OSError:
            log.info("not part of a cluster: nothing to do")
            return 0
        if master != paths.node_name():
            return 0
        client = luxi.Client()
        until = paused_until(client)
        if until is not None and not ns.ignore_pause:
            log.info("paused until %s: nothing done", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until)))
            return 0
        state = load_state()
        restart_down_instances(client, state)
        save_state(state)
        for name, index, _, now in verify_disks(client):
            log.warning("instance %s: disk %d stays %s", name, index, now)
        archived, _ = client.call("AutoArchiveJobs", age, 30.0)
        if archived:
            log.info("archived %d jobs", archived)
        return 0
    except errors.GenericError as err:
        log.error("%s", err)
        return 1


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
        d = threads.deferToThread(subprocess.run, [sys.executable, "-m", "genet.watcher"],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=3600)
        d.addErrback(lambda failure: log.error("genet-watcher did not run: %s", failure.getErrorMessage()))
        d.addBoth(lambda _: running.clear())
    task.LoopingCall(tick).start(interval, now=False)


if __name__ == "__main__":
    sys.exit(main())
