"""genet-masterd: start the master daemon (job queue, config, luxi server) on this node.

Only the start-up wiring lives here; the daemon itself is genet.masterd.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from genet import daemon_util, master_ip, paths
from genet.masterd import LuxiHandlers, MasterContext, make_factory

log = logging.getLogger("genet-masterd")
STOP_GRACE = 10.0       # seconds the daemon may take to stop before it exits regardless


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genet-masterd", description="genet master daemon")
    parser.add_argument("--workers", type=int, default=None, help="concurrent jobs (default: cluster setting)")
    parser.add_argument("--no-voting", action="store_true", help="start without asking the other nodes")
    parser.add_argument("--lease", type=int, default=None,
                        help="the etcd lease of the master role this node won (automatic master failover)")
    parser.add_argument("--lease-granted", type=float, default=None,
                        help="when the lease was asked for (the system's monotonic clock)")
    return parser


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s genet-masterd %(levelname)s %(message)s")
    from twisted.internet import reactor

    paths.ensure_dirs()
    ctx = MasterContext.on_this_node(opts.workers, opts.no_voting, elected=opts.lease is not None)
    if opts.lease is not None:
        ctx.hold_lease(opts.lease, opts.lease_granted)
    reactor.suggestThreadPoolSize(128)
    sock = paths.master_socket()
    sock.unlink(missing_ok=True)
    reactor.listenUNIX(str(sock), make_factory(LuxiHandlers(ctx)), mode=0o660)
    daemon_util.write_pid_file("genet-masterd")
    log.info("master daemon of %s serving on %s", ctx.node_name, sock)
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))

    def deposed() -> None:
        daemon_util.stop("genet-rapi")
        reactor.callFromThread(reactor.stop)
    ctx.on_deposed = deposed
    threading.Thread(target=ctx.heartbeat, name="heartbeat", daemon=True).start()
    threading.Thread(target=ctx.usage_sampling, name="usage", daemon=True).start()
    threading.Thread(target=ctx.instance_ha, name="instance-ha", daemon=True).start()
    threading.Thread(target=ctx.keep_lease, name="lease", daemon=True).start()
    threading.Thread(target=master_ip.at_master_daemon, args=(ctx.cfg.snapshot(), master_ip.START),
                     name="master-ip", daemon=True).start()
    reactor.run()
    # a bounded stop: a deposed master must not linger (its node may win the next election, and
    # a masterd still running there would keep the new one from starting)
    threading.Timer(STOP_GRACE, os._exit, args=(0,)).start()
    ctx.stop()
    master_ip.at_master_daemon(ctx.cfg.snapshot(), master_ip.STOP)
    paths.pid_file("genet-masterd").unlink(missing_ok=True)
    os._exit(0)


if __name__ == "__main__":
    main()
