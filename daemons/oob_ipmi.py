"""genet-oob-ipmi: fence a node through its BMC (the out-of-band program genet.fence.ipmi)."""
from __future__ import annotations

import sys

from genet.fence import agent, ipmi


def main(argv: list[str] | None = None) -> int:
    return agent.run("genet-oob-ipmi", sys.argv[1:] if argv is None else argv, ipmi.COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
