"""The program side of Ganeti's out-of-band protocol, shared by genet's fencing agents.

genet (genet.oob) runs an agent as ``PROGRAM COMMAND NODE``. The agent exits 0 when the command
was carried out, printing JSON for power-status (``{"powered": bool}``) and health (a list of
``[item, status]``) and nothing for the power commands; on failure it exits 1 with the reason on
standard error, on a wrong command line 2. Each agent reads its per-node settings from an INI
file, ``/etc/genet/oob/AGENT.conf`` below the node's state root.
"""
from __future__ import annotations

import configparser
import json
import sys
from typing import Any, Callable, Mapping, Sequence

from genet import oob, paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Command = Callable[[str], Any]      # NODE -> the answer (None for the power commands)


class AgentError(Exception):
    """The command could not be carried out; the message says why, for the administrator."""


def run(prog: str, argv: Sequence[str], commands: Mapping[str, Command]) -> int:
    """Carry out ``argv`` (COMMAND NODE) with ``commands``; the exit code."""
    if len(argv) != 2 or argv[0] not in oob.COMMANDS:
        print(f"usage: {prog} {{{','.join(oob.COMMANDS)}}} NODE", file=sys.stderr)
        return EXIT_USAGE
    command, node = argv
    try:
        answer = commands[command](node)
    except AgentError as err:
        print(f"{prog}: {command} {node}: {err}", file=sys.stderr)
        return EXIT_FAILED
    if answer is not None:
        print(json.dumps(answer))
    return EXIT_OK


def node_settings(agent: str, node: str, *, own_section: bool,
                  interpolation: configparser.Interpolation | None = None) -> configparser.SectionProxy:
    """The settings of ``node`` in the agent's file: its section ``[NODE]`` over ``[DEFAULT]``.
    With ``own_section`` a node without a section is an error (its BMC cannot be guessed);
    without, it gets the defaults alone."""
    path = paths.oob_agent_config(agent)
    parser = configparser.ConfigParser(interpolation=interpolation, default_section="DEFAULT")
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as err:
        raise AgentError(f"cannot read the configuration {path}: {err.strerror}") from None
    except configparser.Error as err:
        raise AgentError(f"the configuration {path} is not valid: {err}") from None
    if parser.has_section(node):
        return parser[node]
    if own_section:
        raise AgentError(f"no section [{node}] for this node in {path}")
    return parser[parser.default_section]
