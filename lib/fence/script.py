"""genet-oob-script: fencing through the site's own commands (a power switch's CLI, a cloud's API
client, a dev cluster's kill-node), one shell command per out-of-band command.

``/etc/genet/oob/script.conf`` holds them in ``[DEFAULT]`` and, for nodes that differ, in the
node's own section; ``%(node)s`` is the node's name, shell-quoted (a literal ``%`` is ``%%``)::

    [DEFAULT]
    power-on = pdu-switch on %(node)s
    power-off = pdu-switch off --wait %(node)s
    power-status = pdu-switch status %(node)s     # exit 0: powered, 1: off, else: failed
    health = pdu-check %(node)s                   # lines "ITEM STATUS", STATUS one of OK WARNING ...

Without a power-cycle command, power-cycle is power-off then power-on. A command fails when it
exits non-zero; its output is then the reason. The power commands' output is not genet's
business: only power-status and health answer.
"""
from __future__ import annotations

import configparser
import shlex
import subprocess

from genet import oob, paths
from genet.fence.agent import AgentError, node_settings

AGENT = "script"
POWERED, UNPOWERED = 0, 1       # power-status's exit codes


def configured(node: str, key: str) -> str | None:
    """The shell command for ``key`` on ``node`` with ``%(node)s`` filled in, None if there is none."""
    section = node_settings(AGENT, node, own_section=False, interpolation=configparser.BasicInterpolation())
    try:
        return section.get(key, vars={"node": shlex.quote(node)}) or None
    except configparser.Error as err:
        raise AgentError(f"{key} in {paths.oob_agent_config(AGENT)}: {err}") from None


def command_for(node: str, key: str) -> str:
    command = configured(node, key)
    if command is None:
        raise AgentError(f"no {key} command for this node in {paths.oob_agent_config(AGENT)}")
    return command


def shell(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, capture_output=True, text=True)


def failure(command: str, proc: subprocess.CompletedProcess) -> AgentError:
    output = (proc.stderr.strip() or proc.stdout.strip() or "no output")[-2000:]
    return AgentError(f"'{command}' exited with code {proc.returncode}: {output}")


def carry_out(node: str, key: str) -> None:
    command = command_for(node, key)
    proc = shell(command)
    if proc.returncode != 0:
        raise failure(command, proc)


def power_on(node: str) -> None:
    carry_out(node, oob.POWER_ON)


def power_off(node: str) -> None:
    carry_out(node, oob.POWER_OFF)


def power_cycle(node: str) -> None:
    if configured(node, oob.POWER_CYCLE) is None:
        power_off(node)
        power_on(node)
    else:
        carry_out(node, oob.POWER_CYCLE)


def power_status(node: str) -> dict:
    command = command_for(node, oob.POWER_STATUS)
    proc = shell(command)
    if proc.returncode not in (POWERED, UNPOWERED):
        raise failure(command, proc)
    return {oob.POWERED: proc.returncode == POWERED}


def health(node: str) -> list:
    command = command_for(node, oob.HEALTH)
    proc = shell(command)
    if proc.returncode != 0:
        raise failure(command, proc)
    items = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        item, _, status = line.strip().rpartition(" ")
        if not item.strip() or status not in oob.STATUSES:
            raise AgentError(f"'{command}' printed {line.strip()!r}, not 'ITEM STATUS' with STATUS one of"
                             f" {', '.join(oob.STATUSES)}")
        items.append([item.strip(), status])
    return items


COMMANDS = {oob.POWER_ON: power_on, oob.POWER_OFF: power_off, oob.POWER_CYCLE: power_cycle,
            oob.POWER_STATUS: power_status, oob.HEALTH: health}
