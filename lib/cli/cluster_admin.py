"""gnt-cluster's administration commands: version, master-ping, search-tags, rename,
repair-disk-sizes, command, copyfile and renew-crypto.

command and copyfile reach the nodes over genet-noded's mutual TLS (the cluster certificate
this master holds), not over SSH as Ganeti's do: genet's nodes trust each other through that
certificate, and SSH is used once, when a node is added.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import sys

from genet import __version__, config, errors, luxi, opcodes, paths
from genet.cli import base

SEPARATOR = "-" * 48


def cmd_version(ns) -> int:
    info = luxi.Client().call("QueryClusterInfo")
    print(f"Software version: {info['software_version']}")
    print(f"Internode protocol: {info['protocol_version']}")
    print(f"Configuration format: {info['config_version']}")
    print(f"OS api version: {info['os_api_version']}")
    print(f"Export interface: {info['export_version']}")
    print(f"VCS version: {info.get('vcs_version') or f'(genet) version v{__version__}'}")
    return 0


def cmd_master_ping(ns) -> int:
    """Exit 0 if the master daemon answers a cluster query, else 1 (whatever went wrong)."""
    try:
        luxi.Client().call("QueryClusterInfo")
    except Exception:       # noqa: BLE001 (Ganeti's: any failure means "not alive")
        return 1
    return 0


def cmd_search_tags(ns) -> int:
    result = base.submit_or_run(ns, [opcodes.OpTagsSearch(pattern=ns.pattern)])
    if result is None:
        return 0
    if not result[0]:
        return 1
    for path, tag in sorted(result[0]):
        print(f"{path} {tag}")
    return 0


def cmd_rename(ns) -> int:
    [old] = luxi.Client().call("QueryConfigValues", ["cluster_name"])
    result = base.submit_or_run(ns, [opcodes.OpClusterRename(name=ns.name)])
    if result and result[0]:
        print(f"Cluster renamed from '{old}' to '{result[0]}'")
    return 0


def _nodes(ns, skip_master: bool = False) -> tuple[list[tuple[str, str]], object]:
    """The online nodes asked for (-n, -g; all by default), in Ganeti's order (natural, the
    master last), with the address to use, and the RPC to reach them."""
    from genet.rpc import NodeRpc, RpcClient
    data = config.load(paths.config_file())
    master = data.cluster["master_node"]
    groups = {g["name"]: uuid for uuid, g in data.nodegroups.items()}
    if ns.nodegroup is not None and ns.nodegroup not in groups:
        raise errors.OpPrereqError(f"node group {ns.nodegroup!r} does not exist", errors.ECode.NOENT)
    unknown = sorted(set(ns.nodes or []) - set(data.nodes))
    if unknown:
        raise errors.OpPrereqError(f"node(s) {', '.join(unknown)} not in the cluster", errors.ECode.NOENT)
    chosen = [n for n in data.nodes.values() if (not ns.nodes or n["name"] in ns.nodes) and not n["offline"]
              and (ns.nodegroup is None or n["group"] == groups[ns.nodegroup])
              and not (skip_master and n["name"] == master)]
    chosen.sort(key=lambda n: (n["name"] == master, natural_key(n["name"])))
    key = "secondary_ip" if getattr(ns, "use_replication_network", False) else "primary_ip"
    addresses = {n["name"]: n[key] or n["primary_ip"] for n in chosen}
    rpc = NodeRpc(RpcClient(paths.cluster_cert(), data.cluster["noded_port"]), addresses.__getitem__)
    return [(n["name"], addresses[n["name"]]) for n in chosen], rpc


def natural_key(name: str) -> list:
    """node2 before node10 (Ganeti's "somewhat alphabetic" order)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def cmd_command(ns) -> int:
    command = " ".join(ns.command)
    if not command:
        raise errors.OpPrereqError("no command given", errors.ECode.INVAL)
    nodes, rpc = _nodes(ns)
    for name, _ in nodes:        # one after another, as Ganeti's, the master last
        res = rpc.run_command(name, command)
        code, output = (res.payload.exit_code, res.payload.output) if not res.failed else (-1, res.fail_msg)
        if ns.failure_only and code == 0:
            continue
        print(SEPARATOR)
        if ns.show_machine_names:
            for line in output.splitlines():
                print(f"{name}: {line}")
        else:
            print(f"node: {name}")
            print(output)
        print(f"return code = {code}")
    return 0


def cmd_copyfile(ns) -> int:
    filename = os.path.abspath(ns.file)
    if not os.path.exists(filename):
        raise errors.OpPrereqError(f"No such filename '{filename}'", errors.ECode.INVAL)
    with open(filename, "rb") as source:
        data = base64.b64encode(source.read()).decode()
    mode = os.stat(filename).st_mode
    nodes, rpc = _nodes(ns, skip_master=True)
    port = config.load(paths.config_file()).cluster["noded_port"]
    results = rpc.upload_file.on(dict(nodes), filename, data, mode) if nodes else {}
    for name, _ in nodes:
        if results[name].failed:
            print(f"Copy of file {filename} to node {name}:{port} failed", file=sys.stderr)
    return 0


# options of renew-crypto for what genet has not got, and why
REFUSED_CRYPTO = {
    "new_confd_hmac_key": ("--new-confd-hmac-key", "genet has no confd daemon and no HMAC key"),
    "new_ssh_keys": ("--new-ssh-keys", "genet's nodes trust each other through the cluster certificate;"
                     " it keeps no SSH keys"),
    "ssh_key_type": ("--ssh-key-type", "genet keeps no SSH keys"),
    "ssh_key_bits": ("--ssh-key-bits", "genet keeps no SSH keys"),
    "no_ssh_key_check": ("--no-ssh-key-check", "genet keeps no SSH keys"),
}


def cmd_renew_crypto(ns) -> int:
    for dest, (flag, why) in REFUSED_CRYPTO.items():
        if getattr(ns, dest) not in (None, False):
            raise errors.OpPrereqError(f"{flag} is not supported: {why}", errors.ECode.INVAL)
    if ns.new_rapi_certificate and ns.rapi_certificate:
        print("Only one of the --new-rapi-certificate and --rapi-certificate options can be specified.",
              file=sys.stderr)
        return 1
    if ns.new_spice_certificate and (ns.spice_certificate or ns.spice_ca_certificate):
        print("When using --new-spice-certificate, the --spice-certificate and --spice-ca-certificate"
              " must not be used.", file=sys.stderr)
        return 1
    if bool(ns.spice_certificate) != bool(ns.spice_ca_certificate):
        print("Both --spice-certificate and --spice-ca-certificate must be used.", file=sys.stderr)
        return 1
    if ns.new_cluster_domain_secret and ns.cluster_domain_secret:
        print("Only one of the --new-cluster-domain-secret and --cluster-domain-secret options can be"
              " specified at the same time.", file=sys.stderr)
        return 1
    op = opcodes.OpClusterRenewCrypto(
        node_certificates=ns.new_cluster_certificate or ns.new_node_certificates,
        new_rapi_certificate=ns.new_rapi_certificate, new_spice_certificate=ns.new_spice_certificate,
        rapi_certificate=_read(ns.rapi_certificate), spice_certificate=_read(ns.spice_certificate),
        spice_ca_certificate=_read(ns.spice_ca_certificate),
        new_cluster_domain_secret=ns.new_cluster_domain_secret, cluster_domain_secret=_read(ns.cluster_domain_secret))
    if base.submit_or_run(ns, [op]) is not None:
        print('All requested certificates and keys have been replaced. Running "gnt-cluster verify" now is'
              ' recommended.')
    return 0


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="ascii") as source:
            return source.read()
    except (OSError, UnicodeDecodeError) as err:
        raise errors.OpPrereqError(f"cannot read {path}: {err}", errors.ECode.INVAL) from None


def _node_selection(p) -> None:
    p.add_argument("-n", "--node", dest="nodes", action="append", metavar="NODE",
                   help="Only this node (repeat for more; default: every online node)")
    p.add_argument("-g", "--node-group", dest="nodegroup", metavar="GROUP", help="Only the nodes of this group")


def build(sub) -> None:
    from genet.cli import cluster_epo, cluster_upgrade
    cluster_upgrade.build(sub)
    cluster_epo.build(sub)
    base.command(sub, "version", "Show the cluster's software, protocol and format versions", cmd_version)
    base.command(sub, "master-ping", "Exit 0 if the master daemon answers, 1 if not", cmd_master_ping)

    p = base.command(sub, "search-tags", "Find the tags matching a regular expression on every object",
                     cmd_search_tags)
    p.add_argument("pattern", metavar="PATTERN")
    base.add_submit_options(p)

    p = base.command(sub, "rename", "Give the cluster a new name", cmd_rename)
    p.add_argument("name", metavar="NEW_NAME")
    p.add_argument("-f", "--force", action="store_true", help="Do not ask for confirmation (genet never asks)")
    base.add_submit_options(p)

    base.opcode_command(sub, "repair-disk-sizes", "Record each disk's real size where the config differs",
                        opcodes.OpClusterRepairDiskSizes)

    p = base.command(sub, "command", "Run a command on every node (or some), the master last", cmd_command)
    _node_selection(p)
    p.add_argument("-M", "--show-machine-names", dest="show_machine_names", action="store_true",
                   help="Prefix every output line with the node's name")
    p.add_argument("--failure-only", action="store_true", help="Show only the nodes where the command failed")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")

    p = base.command(sub, "copyfile", "Copy a file of this node to the same path on the other nodes",
                     cmd_copyfile)
    _node_selection(p)
    p.add_argument("--use-replication-network", action="store_true",
                   help="Reach the nodes at their secondary (replication) address")
    p.add_argument("file", metavar="FILE")

    p = base.command(sub, "renew-crypto", "Renew the cluster, RAPI or SPICE certificates or the cluster domain"
                     " secret", cmd_renew_crypto)
    p.add_argument("-f", "--force", action="store_true", help="Do not ask for confirmation (genet never asks)")
    for flag, helptext in (("--new-cluster-certificate", "Renew the cluster certificate on every node"),
                           ("--new-node-certificates", "The same as --new-cluster-certificate (genet's nodes"
                            " share the cluster certificate)"),
                           ("--new-rapi-certificate", "Make a new self-signed RAPI certificate"),
                           ("--new-spice-certificate", "Make a new self-signed SPICE certificate (its own CA)"),
                           ("--new-confd-hmac-key", "Refused: genet has no confd HMAC key"),
                           ("--new-cluster-domain-secret", "Make a new cluster domain secret on every node"),
                           ("--new-ssh-keys", "Refused: genet keeps no SSH keys"),
                           ("--no-ssh-key-check", "Refused: genet keeps no SSH keys")):
        p.add_argument(flag, action="store_true", help=helptext)
    for flag, helptext in (("--rapi-certificate", "Use this RAPI certificate (PEM, with its key)"),
                           ("--spice-certificate", "Use this SPICE certificate (PEM, with its key)"),
                           ("--spice-ca-certificate", "The CA certificate that signed --spice-certificate"),
                           ("--cluster-domain-secret", "Use the cluster domain secret in this file (one line)"),
                           ("--ssh-key-type", "Refused: genet keeps no SSH keys"),
                           ("--ssh-key-bits", "Refused: genet keeps no SSH keys")):
        p.add_argument(flag, default=None, metavar="FILE" if "certificate" in flag or "secret" in flag else "VALUE",
                       help=helptext)
    base.add_submit_options(p)
