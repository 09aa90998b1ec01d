"""genet-noded: start the node daemon (JSON over mutually authenticated HTTPS) on this node.

Only the start-up wiring lives here; the procedures are genet.noded.
"""
from __future__ import annotations

import argparse
import logging
import os
import threading

from genet import config, daemon_util, paths, ssl_utils
from genet.noded import NodeProcedures, make_site

log = logging.getLogger("genet-noded")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genet-noded", description="genet node daemon")
    parser.add_argument("--bind", help="address to listen on (default: this node's address)")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--watcher-interval", type=float, default=300.0, metavar="SECONDS",
                        help="Run genet-watcher this often (0: never; run it from cron instead)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    opts = parser.parse_args(argv)
    if opts.watcher_interval < 0:
        parser.error("--watcher-interval must not be negative")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s genet-noded %(levelname)s %(message)s")

    from twisted.internet import reactor

    from genet import netutils
    ssconf = config.read_ssconf()
    port = opts.port or int(ssconf.get("noded_port") or os.environ.get("GENET_NODED_PORT") or config.DEFAULT_NODED_PORT)
    bind = opts.bind or netutils.resolve(paths.node_name())
    # stop a little later, so the reply to leave_cluster still goes out
    procedures = NodeProcedures(stop_daemon=lambda: reactor.callFromThread(reactor.callLater, 0.5, reactor.stop))
    reactor.suggestThreadPoolSize(32)
    reactor.listenSSL(port, make_site(procedures), ssl_utils.server_context_factory(paths.cluster_cert()),
                      interface=bind)
    daemon_util.write_pid_file("genet-noded")
    log.info("listening on %s:%d", bind, port)
    if opts.watcher_interval:
        from genet import watcher
        watcher.schedule(reactor, opts.watcher_interval)
    from genet.ha.node_agent import Agent      # automatic master failover's part on this node
    stop_agent = threading.Event()
    threading.Thread(target=Agent().run, args=(stop_agent,), name="election", daemon=True).start()
    reactor.run()
    stop_agent.set()
    paths.pid_file("genet-noded").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
