"""Ganeti's compression tools for disk copies between nodes (gnt-backup export and import,
gnt-instance move): which names a cluster may allow, which of them a copy may use, and the
commands that compress and expand a stream with each (Ganeti's, so an image compressed by
one cluster's tool is read by another's)."""
from __future__ import annotations

import re

from genet import errors

NONE = "none"              # no compression: reserved, never a tool's name
GZIP = "gzip"              # always allowed: Ganeti's compatibility rule
DEFAULT_TOOLS = ("gzip", "gzip-fast", "gzip-slow")
# tools called with options of their own; any other allowed name N compresses as ``N`` and
# expands as ``N -d`` (reading stdin, writing stdout, as gzip does)
_COMPRESS = {"gzip": ["gzip", "-1", "-c"], "gzip-fast": ["gzip", "-1", "-c"], "gzip-slow": ["gzip", "-c"],
             "lzop": ["lzop", "-c"]}
_EXPAND = {"gzip": ["gzip", "-d", "-c"], "gzip-fast": ["gzip", "-d", "-c"], "gzip-slow": ["gzip", "-d", "-c"],
           "lzop": ["lzop", "-d", "-c"]}
_NAME = re.compile(r"^[-_a-zA-Z0-9]+$")


def check_tools(tools: list[str]) -> list[str]:
    """A cluster's list of allowed tools (gnt-cluster --compression-tools), checked as Ganeti does."""
    illegal = [tool for tool in tools if not _NAME.match(tool)]
    if illegal:
        raise errors.OpPrereqError(f"The tools '{', '.join(illegal)}' contain illegal characters: only"
                                   " alphanumeric values, dashes, and underscores are allowed", errors.ECode.INVAL)
    if GZIP not in tools:
        raise errors.OpPrereqError(f"For compatibility reasons, the {GZIP} utility must be present among the"
                                   " compression tools", errors.ECode.INVAL)
    if NONE in tools:
        raise errors.OpPrereqError(f"{NONE} is a reserved value used for no compression, and cannot be used as"
                                   " the name of a tool", errors.ECode.INVAL)
    return list(dict.fromkeys(tools))


def check_allowed(tool: str, allowed: list[str]) -> None:
    """A copy may use no compression or one of the cluster's tools."""
    if tool != NONE and tool not in allowed:
        raise errors.OpPrereqError(f"Compression tool not allowed, tools allowed are [{', '.join(allowed)}]",
                                   errors.ECode.INVAL)


def compress_command(tool: str) -> list[str] | None:
    """The command that compresses stdin to stdout with ``tool`` (None: no compression)."""
    return None if tool == NONE else list(_COMPRESS.get(tool, [tool]))


def expand_command(tool: str) -> list[str] | None:
    """The command that expands what ``compress_command(tool)`` made (None: no compression)."""
    return None if tool == NONE else list(_EXPAND.get(tool, [tool, "-d"]))
