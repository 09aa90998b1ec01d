"""Checks the suite skips because the cluster software is known to fail them, and why.

A known bug would otherwise fail every run until it is fixed and hide new failures behind it.
Each entry names the bug so that the SKIP line says what is wrong; ``--run-known-bugs`` runs
the checks anyway, to see whether a fix works. Remove an entry once its bug is fixed.
"""
from __future__ import annotations

# (check, disk template) -> the bug
KNOWN_BUGS = {
    ("rename", "mirror"):
        "genet bug: gnt-instance rename moves a mirror instance's image directory on the primary "
        "node only (LUInstanceRename runs blockdev_rename on the primary alone); the secondary's "
        "copy then stays under the old name, so grow-disk, failover and migrate fail "
        "('disk 0 of NAME is missing') and gnt-instance remove leaves that copy behind",
}


def known_bug(check: str, template: str) -> str | None:
    return KNOWN_BUGS.get((check, template))
