"""genet-daemon start|stop: (re)start this node's daemons, masterd only on the master (with
automatic master failover on, only genet-noded: its election starts masterd on the winner).

Only argument parsing lives here; starting and stopping is genet.daemon_util.
"""
from __future__ import annotations

import argparse
import sys

from genet import daemon_util, errors, paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genet-daemon")
    parser.add_argument("action", choices=["start", "stop"])
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        if ns.action == "stop":
            daemon_util.stop_master_daemons()
            daemon_util.stop("genet-noded")
            return 0
        daemon_util.start("genet-noded")
        from genet.ha import node_agent
        if node_agent.wanted(node_agent.local_config()):
            return 0        # automatic master failover: masterd starts where the election says
        master = paths.ssconf_file("master_node")
        if master.exists() and master.read_text().strip() == paths.node_name():
            daemon_util.start_master_daemons()
    except errors.GenericError as err:
        print(errors.format_error(err), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
