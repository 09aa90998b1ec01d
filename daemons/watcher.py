"""genet-watcher: run the watcher's periodic repairs once, as cron (or genet-noded) does.

Only argument parsing and logging set-up live here; the repairs are genet.watcher.
"""
from __future__ import annotations

import argparse
import logging
import sys

from genet import errors, paths, watcher


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genet-watcher", description=watcher.__doc__.splitlines()[0])
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
        return watcher.run(parse_age(ns.job_age), ns.ignore_pause)
    except errors.GenericError as err:
        watcher.log.error("%s", err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
