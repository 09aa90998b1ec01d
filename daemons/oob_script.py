"""genet-oob-script: fence a node with the site's commands (the out-of-band program genet.fence.script)."""
from __future__ import annotations

import sys

from genet.fence import agent, script


def main(argv: list[str] | None = None) -> int:
    return agent.run("genet-oob-script", sys.argv[1:] if argv is None else argv, script.COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
