"""Block ``networks``: gnt-network as Ganeti's QA drives it (qa_network.py), and an instance whose
NIC takes its address from a network's pool.

The networks are configuration only (no address of theirs is routed or configured on a node), in
198.18.0.0/15, the benchmarking range. Every network and group the block makes is named after the
run and removed at the end, even after a failure.
"""
from __future__ import annotations

import ipaddress

from qa import generic
from qa.context import Context
from qa.report import CheckFailed

BLOCK = "networks"
LIST_FIELDS = ["name", "network", "gateway", "mac_prefix", "free_count", "reserved_count", "external_reservations",
               "group_list", "group_cnt", "inst_list", "inst_cnt", "tags", "uuid"]
SUBNET = ipaddress.ip_network("198.18.100.0/28")


def run(ctx: Context) -> None:
    made: dict[str, list[str]] = {"network": [], "group": []}
    try:
        _checks(ctx, made)
    finally:
        for network in made["network"]:
            ctx.gnt("gnt-network", "disconnect", network, check=False)
            ctx.gnt("gnt-network", "remove", network, check=False)
        for group in made["group"]:
            ctx.gnt("gnt-group", "remove", group, check=False)


def _row(ctx: Context, network: str, *fields: str) -> dict[str, str]:
    [row] = ctx.gnt_rows("gnt-network", list(fields), network)
    return dict(zip(fields, row))


def _addresses(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _checks(ctx: Context, made: dict[str, list[str]]) -> None:
    host = list(SUBNET.hosts())
    network = ctx.new_name("net")
    made["network"].append(network)

    with ctx.check(BLOCK, "gnt-network add (a taken name refused); list shows subnet, gateway, MAC prefix", True):
        ctx.gnt("gnt-network", "add", "--network", str(SUBNET), "--gateway", str(host[0]),
                "--mac-prefix", "aa:00:01", "--add-reserved-ips", str(host[4]), network)
        generic.refused(ctx, "gnt-network", "add", "--network", "198.18.101.0/24", network)
        row = _row(ctx, network, "network", "gateway", "mac_prefix", "free_count", "reserved_count")
        # Ganeti reserves the network and broadcast addresses too
        wanted = {"network": str(SUBNET), "gateway": str(host[0]), "mac_prefix": "aa:00:01",
                  "free_count": str(SUBNET.num_addresses - 4), "reserved_count": "4"}
        if row != wanted:
            raise CheckFailed(f"gnt-network list shows {row}, expected {wanted}")

    with ctx.check(BLOCK, "gnt-network modify --add/--remove-reserved-ips and --gateway"):
        ctx.gnt("gnt-network", "modify", "--add-reserved-ips", f"{host[5]},{host[6]}", network)
        ctx.gnt("gnt-network", "modify", "--remove-reserved-ips", str(host[4]), "--gateway", str(host[1]), network)
        row = _row(ctx, network, "gateway", "external_reservations")
        reserved = _addresses(row["external_reservations"])
        if row["gateway"] != str(host[1]) or not {str(host[1]), str(host[5]), str(host[6])} <= set(reserved) \
                or str(host[4]) in reserved:
            raise CheckFailed(f"gnt-network list after modify: gateway {row['gateway']}, reserved {reserved}")

    group = ctx.new_name("group")
    made["group"].append(group)
    with ctx.check(BLOCK, "gnt-network connect --nic-parameters (info shows it); a connected network cannot be "
                          "removed", True):
        ctx.gnt("gnt-group", "add", group)
        ctx.gnt("gnt-network", "connect", "--nic-parameters", "mode=bridged,link=qa-br9", network, group)
        row = _row(ctx, network, "group_cnt")
        groups = ctx.rapi.get(f"/2/networks/{network}")["group_list"]
        if row["group_cnt"] != "1" or [list(g)[:3] for g in groups] != [[group, "bridged", "qa-br9"]]:
            raise CheckFailed(f"network {network} after connect: group_cnt {row['group_cnt']}, groups {groups}")
        if network not in _group_networks(ctx, group):
            raise CheckFailed(f"GET /2/groups/{group} does not name network {network}")
        _expect_info(ctx, network, "  connected to node groups:", f"    {group} (mode:bridged link:qa-br9 vlan:)")
        generic.refused(ctx, "gnt-network", "remove", network)

    with ctx.check(BLOCK, "an instance's NIC takes a free address from the pool; disconnect refused meanwhile"):
        _pool_instance(ctx, network)

    with ctx.check(BLOCK, "gnt-network disconnect, then rename"):
        ctx.gnt("gnt-network", "disconnect", network, group)
        if _row(ctx, network, "group_cnt")["group_cnt"] != "0" or network in _group_networks(ctx, group):
            raise CheckFailed(f"network {network} is still connected to {group}")
        renamed = ctx.new_name("net")
        ctx.gnt("gnt-network", "rename", network, renamed)
        made["network"][made["network"].index(network)] = renamed
        names = [row[0] for row in ctx.gnt_rows("gnt-network", ["name"])]
        if network in names or renamed not in names:
            raise CheckFailed(f"gnt-network list shows {names} after renaming {network} to {renamed}")
        network = renamed

    with ctx.check(BLOCK, "gnt-network list and list-fields"):
        generic.check_list_fields(ctx, "gnt-network", LIST_FIELDS)
        generic.check_list(ctx, "gnt-network")

    with ctx.check(BLOCK, "gnt-network add-tags, list-tags, search-tags, remove-tags"):
        generic.check_tags(ctx, "gnt-network", "network", network)

    with ctx.check(BLOCK, "RAPI /2/networks: POST, PUT modify, connect and disconnect, DELETE"):
        _rapi_checks(ctx, made, group)

    with ctx.check(BLOCK, "gnt-network remove"):
        ctx.gnt("gnt-network", "remove", network)
        made["network"].remove(network)
        if network in [n["name"] for n in ctx.rapi.get("/2/networks")]:
            raise CheckFailed(f"GET /2/networks still lists {network}")


def _rapi_checks(ctx: Context, made: dict[str, list[str]], group: str) -> None:
    """What a web manager does with networks, each step a job, read back with gnt-network list."""
    network = ctx.new_name("net")
    made["network"].append(network)
    ctx.rapi.run_job("POST", "/2/networks", {"network_name": network, "network": "198.18.102.0/28",
                                             "gateway": "198.18.102.1"})
    ctx.rapi.run_job("PUT", f"/2/networks/{network}/modify", {"add_reserved_ips": ["198.18.102.7"]})
    ctx.rapi.run_job("PUT", f"/2/networks/{network}/connect", {"group_name": group, "network_mode": "bridged",
                                                               "network_link": "qa-br9"})
    row = _row(ctx, network, "network", "gateway", "external_reservations", "group_cnt")
    if (row["network"], row["gateway"], row["group_cnt"]) != ("198.18.102.0/28", "198.18.102.1", "1") or \
            "198.18.102.7" not in _addresses(row["external_reservations"]):
        raise CheckFailed(f"gnt-network list after the RAPI's jobs: {row}")
    ctx.rapi.run_job("PUT", f"/2/networks/{network}/disconnect", {"group_name": group})
    ctx.rapi.run_job("DELETE", f"/2/networks/{network}")
    made["network"].remove(network)
    if network in [row[0] for row in ctx.gnt_rows("gnt-network", ["name"])]:
        raise CheckFailed(f"gnt-network list still shows {network} after DELETE")


def _expect_info(ctx: Context, network: str, *lines: str) -> None:
    """gnt-network info shows ``lines`` (Ganeti's layout, which scripts read line by line)."""
    shown = ctx.gnt("gnt-network", "info", network).stdout.splitlines()
    missing = [line for line in lines if line not in shown]
    if missing:
        raise CheckFailed(f"gnt-network info {network} lacks the lines {missing}: {shown}")


def _group_networks(ctx: Context, group: str) -> list[str]:
    return [entry if isinstance(entry, str) else entry[0] for entry in ctx.rapi.get(f"/2/groups/{group}")["networks"]]


def _pool_instance(ctx: Context, network: str) -> None:
    """A diskless instance, not started, on a node of the network's own group: its address is one
    of the pool's free ones, the network counts it, and it gives the address back when removed."""
    node = ctx.need_nodes(1, "an instance")[-1]
    [[home]] = ctx.gnt_rows("gnt-node", ["group"], node)
    nic = ctx.rapi.get("/2/info")["nicparams"]["default"]     # a link the nodes have (Ganeti checks bridges)
    ctx.gnt("gnt-network", "connect", "--nic-parameters", f"mode={nic['mode']},link={nic['link']}", network, home)
    free = int(_row(ctx, network, "free_count")["free_count"])
    reserved = set(_addresses(_row(ctx, network, "external_reservations")["external_reservations"]))
    name = ctx.new_name("pool")
    try:
        ctx.created.append(name)
        ctx.gnt("gnt-instance", "add", "-t", "diskless", "-o", ctx.os_name(), "-n", node, "--no-start",
                "--no-name-check", "--no-ip-check", "--net", f"0:network={network},ip=pool", name)
        [[ips, networks]] = ctx.gnt_rows("gnt-instance", ["nic.ips", "nic.networks.names"], name)
        address = ipaddress.ip_address(ips)
        if address not in SUBNET or str(address) in reserved or networks != network:
            raise CheckFailed(f"instance {name} got address {ips} on network {networks}")
        row = _row(ctx, network, "free_count", "inst_list")
        if (int(row["free_count"]), row["inst_list"]) != (free - 1, name):
            raise CheckFailed(f"network {network} after the instance: {row}, expected {free - 1} free")
        _expect_info(ctx, network, "  used by 1 instances:", f"    {name}: 0:{address}")
        generic.refused(ctx, "gnt-network", "disconnect", network, home)
        ctx.remove_instance(name)
        if int(_row(ctx, network, "free_count")["free_count"]) != free:
            raise CheckFailed(f"the address of {name} is not free again after its removal")
    finally:
        if ctx.instance_exists(name):
            ctx.gnt("gnt-instance", "remove", "-f", name, check=False)
        ctx.gnt("gnt-network", "disconnect", network, home, check=False)
