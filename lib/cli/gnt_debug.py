"""gnt-debug: debugging commands (delay)."""
from __future__ import annotations

import sys

from genet import opcodes
from genet.cli import base


def cmd_delay(ns) -> int:
    op = base.opcode_from_args(opcodes.OpTestDelay, ns)
    base.submit_or_run(ns, [op])
    return 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    base.opcode_command(sub, "delay", "Run a job that sleeps for DURATION seconds", opcodes.OpTestDelay,
                        cmd_delay)


def main(argv=None) -> int:
    return base.run("gnt-debug", build, argv)


if __name__ == "__main__":
    sys.exit(main())
