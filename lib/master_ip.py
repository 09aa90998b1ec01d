"""The cluster's floating master IP: the address of the cluster name, held by the master node on
its master netdev (Ganeti's master IP).

The master's side reads the parameters from the config (``network``, ``problem``); the node's side
(genet-noded and genet-masterd, on the master node) puts the address on the device or takes it off
with Ganeti's master-ip-setup steps (``setup``), or runs the administrator's own script of that name
with Ganeti's environment when the cluster says ``use_external_mip_script``.
"""
from __future__ import annotations

import ipaddress
import logging
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass
from typing import Callable

from genet import errors, hooks, paths
from genet.wire import WireObject

START, STOP = "start", "stop"         # the setup script's actions
TURN_HOOKS = {START: ("master-ip-turnup", "OP_CLUSTER_IP_TURNUP"),        # Ganeti's (hooks directory, op code)
              STOP: ("master-ip-turndown", "OP_CLUSTER_IP_TURNDOWN")}
PROBE_TIMEOUT = 1.0                   # seconds a connection to the master IP may take to tell it is taken
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
log = logging.getLogger("genet")


@dataclass
class MasterNetwork(WireObject):
    """Ganeti's MasterNetworkParameters: the master IP, its netmask, the device it goes on."""
    ip: str
    netmask: int
    netdev: str
    ip_version: int           # 4 or 6


# --- the master's side: the parameters from the config ------------------------------------

def network(data) -> MasterNetwork:
    cluster = data.cluster
    return MasterNetwork(cluster["master_ip"], cluster["master_netmask"], cluster["master_netdev"],
                         ip_version(cluster["master_ip"]))


def ip_version(address: str) -> int:
    return ipaddress.ip_address(address).version


def max_netmask(address: str) -> int:
    """The default (and largest) CIDR netmask of an address: 32 for IPv4, 128 for IPv6."""
    return ipaddress.ip_address(address).max_prefixlen


def problem(data) -> str | None:
    """Why the master IP cannot be put on a device, None if it can: the cluster has no master
    netdev, or its master IP is a node's own address (a cluster name that resolves to no address
    of its own), which taking down would cut that node off."""
    cluster = data.cluster
    if not cluster["master_netdev"]:
        return ("no master netdev is configured (gnt-cluster modify --master-netdev): the master IP"
                f" {cluster['master_ip']} is not put on any device")
    for node in data.nodes.values():
        if cluster["master_ip"] in (node["primary_ip"], node["secondary_ip"]):
            return (f"the master IP {cluster['master_ip']} is node {node['name']}'s own address, not one of the"
                    " cluster's: give the cluster a name that resolves to an address of its own"
                    " (gnt-cluster rename)")
    return None


def cluster_address(name: str, fallback: str) -> str:
    """The master IP of a cluster called ``name``: the address the name resolves to, as Ganeti's;
    a name that does not resolve leaves the master node's own address (``fallback``)."""
    from genet import netutils
    try:
        return netutils.resolve(name)
    except errors.OpPrereqError:
        return fallback


def check_netmask(address: str, netmask: int) -> int:
    if not 0 < netmask <= max_netmask(address):
        raise errors.OpPrereqError(f"CIDR netmask ({netmask}) not valid for IPv{ip_version(address)}",
                                   errors.ECode.INVAL)
    return netmask


def init_settings(data, netdev: str | None, netmask: int | None, external: bool) -> None:
    """gnt-cluster init's master IP settings, recorded in ``data`` once checked as Ganeti checks
    them: a valid netmask, a device this node has, an address no other machine holds."""
    cluster = data.cluster
    own = data.nodes[cluster["master_node"]]["primary_ip"]
    cluster.update(master_netdev=netdev or "", use_external_mip_script=external,
                   master_netmask=max_netmask(cluster["master_ip"]) if netmask is None
                   else check_netmask(cluster["master_ip"], netmask))
    if netdev:
        code, output = run(["ip", "link", "show", "dev", netdev])      # Ganeti's check
        if code:
            raise errors.OpPrereqError(f"Invalid master netdev given ({netdev}): '{output.strip()}'",
                                       errors.ECode.INVAL)
        why = problem(data)
        if why:
            raise errors.OpPrereqError(f"--master-netdev: {why}", errors.ECode.INVAL)
    if cluster["master_ip"] != own and taken_elsewhere(cluster["master_ip"]):
        raise errors.OpPrereqError(f"Cluster IP already active ({cluster['master_ip']})", errors.ECode.NOTUNIQUE)


# --- the node's side ----------------------------------------------------------------------

Runner = Callable[[list[str]], tuple[int, str]]


def run(argv: list[str], env: dict | None = None) -> tuple[int, str]:
    """Exit code and output (stdout, then stderr, as Ganeti's RunCmd gives them)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 127, str(err)
    return done.returncode, done.stdout + done.stderr


def environment(params: MasterNetwork) -> dict[str, str]:
    """What Ganeti gives its master-ip-setup script (and the master-ip-turnup/turndown hooks)."""
    return {"MASTER_NETDEV": params.netdev, "MASTER_IP": params.ip, "MASTER_NETMASK": str(params.netmask),
            "CLUSTER_IP_VERSION": str(params.ip_version)}


def setup(params: MasterNetwork, action: str, external: bool, runner: Runner | None = None) -> str:
    """Start or stop the master IP here: the administrator's script, or the built-in steps (their
    commands run by ``runner``); the output. A failure is reported as Ganeti reports its script's."""
    runner = runner or run

    def act() -> str:
        if external:
            script = paths.external_master_setup_script()
            code, output = run([str(script), action], env={"PATH": SYSTEM_PATH, "LC_ALL": "C", **environment(params)})
        else:
            code, output = (start if action == START else stop)(params, runner)
        if code:
            raise errors.OpExecError(f"Failed to {action} the master IP. Script return value: {code},"
                                     f" output: '{output}'")
        return output
    hpath, op_code = TURN_HOOKS[action]       # Ganeti's master-ip-turnup and -turndown hooks around it
    return hooks.run_locally(hpath, op_code, environment(params), act)


def local_addresses(runner: Runner, netdev: str | None = None) -> list[str]:
    """Every "ADDRESS/NETMASK" of this node (of one device)."""
    code, output = runner(["ip", "-o", "address", "show", *(["dev", netdev] if netdev else [])])
    if code:
        return []
    return [words[words.index(family) + 1] for words in map(str.split, output.splitlines())
            for family in ("inet", "inet6") if family in words]


def is_local(address: str, runner: Runner) -> bool:
    return any(entry.split("/")[0] == address for entry in local_addresses(runner))


def taken_elsewhere(address: str) -> bool:
    """Something answers at the address (a connection, or a refusal, to genet-noded's port)."""
    from genet import config
    try:
        port = int(config.read_ssconf().get("noded_port") or config.DEFAULT_NODED_PORT)
    except ValueError:
        port = config.DEFAULT_NODED_PORT
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def start(params: MasterNetwork, runner: Runner) -> tuple[int, str]:
    """Ganeti's master-ip-setup start: nothing if the address is here already, refused if another
    machine holds it, else added to the device (deprecated at once, so that it is never the
    source of this node's own connections) and announced."""
    if is_local(params.ip, runner):
        return 0, "Master IP address already configured on this machine. Doing nothing."
    if taken_elsewhere(params.ip):
        return 1, "Error: master IP address configured on another machine."
    code, output = runner(["ip", "address", "add", f"{params.ip}/{params.netmask}", "dev", params.netdev,
                           "label", f"{params.netdev}:0", "preferred_lft", "0"])
    if code:
        return 1, f"{output}Error during the activation of the master IP address"
    announce(params, runner)
    return 0, ""


def announce(params: MasterNetwork, runner: Runner) -> None:
    """Tell the neighbours, whose caches may still hold the old master's hardware address for the
    master IP: three gratuitous ARP requests (Ganeti's ``arping -U -c 3``), sent by genet itself so
    that no tool is needed; for IPv6 an unsolicited advertisement where ``ndisc6`` is installed.
    Best effort: a failure leaves the neighbours to find out by themselves."""
    if params.ip_version == 6:
        if shutil.which("ndisc6"):
            runner(["ndisc6", "-q", "-r", "3", params.ip, params.netdev])
        return
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((params.netdev, 0))
            mac, address = sock.getsockname()[4], socket.inet_aton(params.ip)
            request = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, address, bytes(6), address)
            frame = (b"\xff" * 6 + mac + struct.pack("!H", 0x0806) + request).ljust(60, b"\0")
            for _ in range(3):
                sock.send(frame)
    except OSError as err:
        log.warning("no gratuitous ARP for %s on %s: %s", params.ip, params.netdev, err)


def stop(params: MasterNetwork, runner: Runner) -> tuple[int, str]:
    """Ganeti's master-ip-setup stop: the address is removed from the device; absent, nothing is
    done, unless it is on another device of this node (which is refused)."""
    if f"{params.ip}/{params.netmask}" not in local_addresses(runner, params.netdev):
        if is_local(params.ip, runner):
            return 1, "Error: master IP address configured on wrong device, can't shut it down."
        return 0, "Master IP address not configured on this machine. Doing nothing."
    code, output = runner(["ip", "address", "del", f"{params.ip}/{params.netmask}", "dev", params.netdev])
    if code:
        return 1, f"{output}Error during the deactivation of the master IP address"
    return 0, ""


def change_netmask(old: int, new: int, address: str, netdev: str, runner: Runner | None = None) -> None:
    """Ganeti's ChangeMasterNetmask: the address with the new netmask first, then without the old."""
    runner = runner or run
    if old == new:
        return
    if not is_local(address, runner):
        raise errors.OpExecError("The master IP address is not up, not attempting to change its netmask")
    label = ["dev", netdev, "label", f"{netdev}:0"]
    if runner(["ip", "address", "add", f"{address}/{new}", *label, "preferred_lft", "0"])[0]:
        raise errors.OpExecError("Could not set the new netmask on the master IP address")
    if runner(["ip", "address", "del", f"{address}/{old}", *label])[0]:
        raise errors.OpExecError("Could not bring down the master IP address with the old netmask")


def held_here() -> str | None:
    """The master IP if this node is the master and holds it as the cluster's floating address
    now (genet-rapi answers there too, as Ganeti's RAPI does at the cluster name)."""
    from genet import config
    try:
        data = config.load(paths.config_file())
    except errors.GenericError:
        return None
    if problem(data) or data.cluster["master_node"] != paths.node_name():
        return None
    return data.cluster["master_ip"] if is_local(data.cluster["master_ip"], run) else None


def at_master_daemon(data, action: str) -> None:
    """genet-masterd's start and stop on the master node: the master IP goes up and down with it
    (as Ganeti's luxid does at its start); a cluster without a floating address has nothing to do.
    Failures are logged: the master works without its floating address."""
    why = problem(data)
    if why:
        log.info("master IP not %s: %s", "activated" if action == START else "deactivated", why)
        return
    try:
        setup(network(data), action, data.cluster["use_external_mip_script"])
    except errors.GenericError as err:
        log.error("%s", err)
        return
    log.info("master IP %s %s on %s", data.cluster["master_ip"], "activated" if action == START else "deactivated",
             data.cluster["master_netdev"])
