"""How a dev cluster's nodes are fenced for real: every node's ``oob_program`` is genet's
script agent (genet-oob-script), whose script.conf, written into every node's state root (any
node may become the master, which runs the program), calls dev-cluster itself: power-off is
kill-node (every process of the node's namespace, QEMU guests included, SIGKILLed until none is
left, its link down), power-on is restart, power-cycle both, power-status the state dev-cluster
recorded, health what ``status`` sees.

genet-noded runs the program inside the master's network namespace, where the nodes' veths
(in the host's namespace) cannot be set down: the commands enter the host's namespace first,
through ``DIR/host-netns``, where start bind-mounts its own (``/proc/1/ns/net`` may be out of
reach: it is on this machine; stop unmounts it with everything else below DIR).
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from genet_dev.netns import TOOL, run

AGENT = "genet-oob-script"
HOST_NETNS = "host-netns"
# exit codes of `dev-cluster power-status`, those genet-oob-script reads
POWERED, UNPOWERED, UNKNOWN = 0, 1, 3
OK, CRITICAL = "OK", "CRITICAL"


def oob_program(bindir: Path) -> str:
    """The node parameter every node of the cluster inherits (set at gnt-cluster init)."""
    return f"oob_program={bindir / AGENT}"


def pin_host_netns(directory: Path) -> None:
    """Bind-mount this (the host's) network namespace on ``DIR/host-netns``."""
    target = directory / HOST_NETNS
    target.touch()
    run(["mount", "--bind", f"/proc/{os.getpid()}/ns/net", str(target)])


def script_conf(directory: Path) -> str:
    """script.conf for the cluster in ``directory`` (``%`` doubled: the file interpolates)."""
    tool = shlex.join(["nsenter", f"--net={directory / HOST_NETNS}", "--", sys.executable, str(TOOL)]
                      ).replace("%", "%%")
    where = shlex.quote(str(directory)).replace("%", "%%")
    lines = ["# written by dev-cluster start: fences this dev cluster's nodes for real (man dev-cluster)",
             "[DEFAULT]", f"dev-cluster = {tool}"]
    lines += [f"{command} = %(dev-cluster)s {subcommand} --dir {where} %(node)s"
              for command, subcommand in (("power-on", "restart"), ("power-off", "kill-node"),
                                          ("power-status", "power-status"), ("health", "health"))]
    return "\n".join(lines) + "\n"


def install(directory: Path, node_roots: list[Path]) -> None:
    pin_host_netns(directory)
    text = script_conf(directory)
    for root in node_roots:
        conf = root / "etc/genet/oob/script.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)


def health(status: dict) -> list[tuple[str, str]]:
    """A node's health items from its ``status`` (see commands.node_status)."""
    daemons = status["daemons"]
    return [("namespace", OK if status["netns_exists"] else CRITICAL),
            ("link", OK if status["link"] == "up" else CRITICAL),
            ("sshd", OK if status["sshd"] else CRITICAL),
            ("genet-noded", OK if "genet-noded" in daemons else CRITICAL)]
