"""genet-rapi: start Ganeti's remote API v2 over HTTPS on the master node.

Only the start-up wiring lives here; the server itself is genet.rapi.server.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal

from genet import daemon_util, paths
from genet.rapi import baserlib
from genet.rapi.auth import UsersFile
from genet.rapi.server import DEFAULT_PORT, Router, context_factory, default_bind_address, make_site

log = logging.getLogger("genet-rapi")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genet-rapi", description="genet remote API daemon (Ganeti RAPI v2)")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("GENET_RAPI_PORT", DEFAULT_PORT)),
                        help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("-b", "--bind", default=None, help="address to listen on (default: this node's primary IP)")
    parser.add_argument("--require-authentication", action="store_true",
                        help="refuse anonymous requests, reads included")
    return parser


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s genet-rapi %(levelname)s %(message)s")
    from twisted.internet import reactor

    from genet.rapi.metrics import Metrics
    paths.ensure_dirs()
    users = UsersFile(paths.rapi_users_file())
    router = Router(users, opts.require_authentication, Metrics(baserlib.call))
    reactor.suggestThreadPoolSize(64)
    address = opts.bind or default_bind_address()
    reactor.listenSSL(opts.port, make_site(router), context_factory(), interface=address, backlog=256)
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(users.reload))
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    daemon_util.write_pid_file("genet-rapi")
    log.info("RAPI serving on https://%s:%d/ (%s)", address, opts.port,
             "authentication required" if opts.require_authentication else "anonymous reads allowed")
    reactor.run()
    paths.pid_file("genet-rapi").unlink(missing_ok=True)
    os._exit(0)


if __name__ == "__main__":
    main()
