"""Checks the suite skips because the cluster software is known to fail them, and why.

A known bug would otherwise fail every run until it is fixed and hide new failures behind it.
Each entry names the bug so that the SKIP line says what is wrong; ``--run-known-bugs`` runs
the checks anyway, to see whether a fix works. Remove an entry once its bug is fixed.
"""
from __future__ import annotations

# (check, disk template; "" for a check of no template) -> the bug
KNOWN_BUGS: dict[tuple[str, str], str] = {
    # none known; the last ones fixed: a mirror instance's rename left the secondary's copy under
    # the old name (LUInstanceRename); gnt-debug delay ran repeat+1 logged rounds (LUTestDelay)
}


def known_bug(check: str, template: str) -> str | None:
    return KNOWN_BUGS.get((check, template))
