"""genet-rapi: start Ganeti's remote API v2 over HTTPS on the master node.

Only the start-up wiring lives here; the server itself is genet.rapi.server.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal

from twisted.internet.error import CannotListenError

from genet import daemon_util, master_ip, paths
from genet.rapi import baserlib
from genet.rapi.auth import UsersFile
from genet.rapi.server import DEFAULT_PORT, Router, context_factory, default_bind_address, make_site

log = logging.getLogger("genet-rapi")
MASTER_IP_CHECK = 5.0         # seconds between two looks for the floating master IP


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genet-rapi", description="genet remote API daemon (Ganeti RAPI v2)")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("GENET_RAPI_PORT", DEFAULT_PORT)),
                        help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("-b", "--bind", default=None, help="address to listen on (default: this node's primary IP)")
    parser.add_argument("--require-authentication", action="store_true",
                        help="refuse anonymous requests, reads included")
    return parser


def listen_at_master_ip(reactor, listen, interval: float = MASTER_IP_CHECK) -> None:
    """Listen at the floating master IP too, from the moment this node holds it (genet.master_ip:
    the master puts it up at its start, or later on the administrator's command); once listening,
    the socket stays and answers whenever the address is here."""
    from twisted.internet import task, threads
    listening: set[str] = set()

    def found(ip: str | None) -> None:
        if ip and ip not in listening:
            try:
                listen(ip)
            except CannotListenError as err:
                log.warning("cannot listen at the master IP %s: %s", ip, err)
                return
            listening.add(ip)
            log.info("RAPI serving at the master IP %s too", ip)
    loop = task.LoopingCall(lambda: threads.deferToThread(master_ip.held_here).addCallback(found))
    loop.clock = reactor
    loop.start(interval)


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
    site = make_site(router)
    reactor.listenSSL(opts.port, site, context_factory(), interface=address, backlog=256)
    if opts.bind is None:
        listen_at_master_ip(reactor, lambda ip: reactor.listenSSL(opts.port, site, context_factory(), interface=ip,
                                                                  backlog=256))
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
