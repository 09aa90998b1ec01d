"""genet-prepare-node-join: run on a joining node over SSH; JSON request on stdin, JSON reply
on stdout. Only the I/O lives here; the preparation is genet.bootstrap.prepare_node_join.
"""
from __future__ import annotations

import json
import sys

from genet import errors
from genet.bootstrap import prepare_node_join


def main() -> int:
    try:
        reply = {"ok": True, **prepare_node_join(json.load(sys.stdin))}
    except (ValueError, errors.GenericError) as err:
        reply = {"ok": False, "error": str(err.args[0] if err.args else err)}
    print(json.dumps(reply))
    return 0 if reply["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
