"""genet-oob-ipmi: fencing through a node's BMC, over IPMI on the LAN (pyghmi).

Each node has a section in ``/etc/genet/oob/ipmi.conf``::

    [node3]
    address = 10.0.0.103        # the BMC's address (or name)
    user = admin
    password_file = node3.pw    # relative to the configuration's folder
    port = 623                  # optional
    timeout = 30                # optional: seconds power-off waits to see the power off

power-off returns only once the BMC reports the power off: a fenced node must be off before
the cluster acts as if it were (restarts its instances elsewhere). power-cycle is power-off,
so confirmed, then power-on; health lists every sensor of the BMC's SDR repository.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pyghmi import exceptions as pyghmi_errors
from pyghmi.constants import Health
from pyghmi.ipmi import command as ipmi_command

from genet import oob, paths
from genet.fence.agent import AgentError, node_settings

AGENT = "ipmi"
DEFAULT_PORT = 623
DEFAULT_TIMEOUT = 30.0
POLL = 0.5          # seconds between two questions for the power state while it goes off


@dataclass(frozen=True)
class Bmc:
    """Where a node's BMC is and how to log in to it."""
    address: str
    port: int
    user: str
    password: str
    timeout: float

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def bmc_of(node: str) -> Bmc:
    """The node's BMC from its section of ipmi.conf; AgentError naming what is missing or wrong."""
    section = node_settings(AGENT, node, own_section=True)
    missing = [key for key in ("address", "user", "password_file") if not section.get(key)]
    if missing:
        raise AgentError(f"[{node}] in {paths.oob_agent_config(AGENT)} lacks {', '.join(missing)}")
    password_file = paths.oob_agent_config(AGENT).parent / Path(section["password_file"])
    try:
        password = password_file.read_text().rstrip("\n")
    except OSError as err:
        raise AgentError(f"cannot read the BMC password file {password_file}: {err.strerror}") from None
    try:
        port, timeout = section.getint("port", DEFAULT_PORT), section.getfloat("timeout", DEFAULT_TIMEOUT)
    except ValueError as err:
        raise AgentError(f"[{node}] in {paths.oob_agent_config(AGENT)}: {err}") from None
    return Bmc(section["address"], port, section["user"], password, timeout)


def login(bmc: Bmc) -> ipmi_command.Command:
    try:
        return ipmi_command.Command(bmc=bmc.address, userid=bmc.user, password=bmc.password, port=bmc.port)
    except pyghmi_errors.IpmiException as err:
        if err.args and err.args[0]:
            raise AgentError(f"the BMC at {bmc} refused the login of {bmc.user!r}: {err}") from None
        raise AgentError(f"the BMC at {bmc} does not answer (IPMI over LAN, UDP)") from None


def asked(bmc: Bmc, what: str, call, *args):
    """``call(*args)``, a BMC's error an AgentError saying what was asked."""
    try:
        return call(*args)
    except pyghmi_errors.PyghmiException as err:
        raise AgentError(f"the BMC at {bmc} failed {what}: {err or 'no answer'}") from None
    except NotImplementedError:      # pyghmi's word for a BMC kind it cannot handle (device SDRs)
        raise AgentError(f"pyghmi cannot ask the BMC at {bmc} {what}: not supported for this BMC") from None


def powered(bmc: Bmc, ipmi: ipmi_command.Command) -> bool:
    return asked(bmc, "to tell the power state", ipmi.get_power)["powerstate"] == "on"


def switch_off(bmc: Bmc, ipmi: ipmi_command.Command) -> None:
    """Power off and wait until the BMC reports the power off."""
    asked(bmc, "to power off", ipmi.set_power, "off")
    deadline = time.monotonic() + bmc.timeout
    while powered(bmc, ipmi):
        if time.monotonic() > deadline:
            raise AgentError(f"the BMC at {bmc} took the power-off but still reports the power on after"
                             f" {bmc.timeout:g} s")
        time.sleep(POLL)


def power_on(node: str) -> None:
    bmc = bmc_of(node)
    asked(bmc, "to power on", login(bmc).set_power, "on")


def power_off(node: str) -> None:
    bmc = bmc_of(node)
    switch_off(bmc, login(bmc))


def power_cycle(node: str) -> None:
    bmc = bmc_of(node)
    ipmi = login(bmc)
    switch_off(bmc, ipmi)
    asked(bmc, "to power on", ipmi.set_power, "on")


def power_status(node: str) -> dict:
    bmc = bmc_of(node)
    return {oob.POWERED: powered(bmc, login(bmc))}


def status_of(reading) -> str:
    """A pyghmi sensor reading's Ganeti health status."""
    if reading.unavailable:
        return oob.STATUS_UNKNOWN
    if reading.health & (Health.Critical | Health.Failed):
        return oob.STATUS_CRITICAL
    return oob.STATUS_WARNING if reading.health & Health.Warning else oob.STATUS_OK


def health(node: str) -> list:
    bmc = bmc_of(node)
    ipmi = login(bmc)
    return [[reading.name, status_of(reading)]
            for reading in asked(bmc, "to read its sensors", lambda: list(ipmi.get_sensor_data()))]


COMMANDS = {oob.POWER_ON: power_on, oob.POWER_OFF: power_off, oob.POWER_CYCLE: power_cycle,
            oob.POWER_STATUS: power_status, oob.HEALTH: health}
