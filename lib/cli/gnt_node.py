"""gnt-node: add, remove, list, inspect and change nodes."""
from __future__ import annotations

import json
import os
import sys

from genet import config, errors, luxi, netutils, opcodes, paths
from genet.cli import base, info, node_power

SSH_TIMEOUT = 20
NODE_DEFAULT = ["name", "dtotal", "dfree", "mtotal", "mfree", "pinst_cnt", "sinst_cnt"]   # Ganeti's list columns


def ssh_prepare_node(name: str, address: str, readd: bool, check_host_key: bool) -> dict:
    """Log in to the new node as root (paramiko) and run genet-prepare-node-join there."""
    import paramiko
    request = {"cert": paths.cluster_cert().read_text(), "readd": readd,
               "ssconf": config.read_ssconf()}
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    if os.environ.get("GENET_SSH_KNOWN_HOSTS"):
        client.load_host_keys(os.environ["GENET_SSH_KNOWN_HOSTS"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy() if check_host_key else paramiko.AutoAddPolicy())
    key = os.environ.get("GENET_SSH_KEY")
    try:
        client.connect(address, username="root", key_filename=key, timeout=SSH_TIMEOUT,
                       allow_agent=False, look_for_keys=key is None)
        stdin, stdout, stderr = client.exec_command("genet-prepare-node-join", timeout=60)
        stdin.write(json.dumps(request))
        stdin.channel.shutdown_write()
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        status = stdout.channel.recv_exit_status()
    except (paramiko.SSHException, OSError) as exc:
        raise errors.OpPrereqError(f"cannot prepare node {name} over SSH ({address}): {exc}",
                                   errors.ECode.ENVIRON) from None
    finally:
        client.close()
    try:
        reply = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise errors.OpPrereqError(f"node {name}: genet-prepare-node-join failed (exit {status}): "
                                   f"{(err or out).strip()[-500:]}", errors.ECode.ENVIRON) from None
    if not reply.get("ok"):
        raise errors.OpPrereqError(f"node {name}: {reply.get('error')}", errors.ECode.ENVIRON)
    return reply


def cmd_add(ns) -> int:
    op = base.opcode_from_args(opcodes.OpNodeAdd, ns)
    client = luxi.Client()
    known = client.query("node", ["name"], ["=", "name", op.node_name])["data"]
    if known and not op.readd:
        raise errors.OpPrereqError(f"node {op.node_name!r} is already in the cluster; use --readd",
                                   errors.ECode.EXISTS)
    if not ns.no_node_setup:        # else the node was prepared by other means (noded running, certificate)
        address = netutils.resolve(op.node_name)
        print(f"-- Preparing node {op.node_name} ({address}) over SSH")
        ssh_prepare_node(op.node_name, address, op.readd, not ns.no_ssh_key_check)
    base.submit_or_run(ns, [op], client)
    return 0


INFO_FIELDS = ["name", "pip", "sip", "pinst_list", "sinst_list", "master_candidate", "drained", "maintenance",
               "offline", "master_capable", "vm_capable", "powered", "ndparams", "custom_ndparams"]


def cmd_info(ns) -> int:
    """Each node in Ganeti's layout and words (a YAML document its tools read)."""
    shown = []
    for node in base.query_named("node", INFO_FIELDS, ns.names, "node"):
        entries = [("Node name", node["name"]), ("primary ip", node["pip"]), ("secondary ip", node["sip"]),
                   ("master candidate", node["master_candidate"]), ("drained", node["drained"]),
                   ("maintenance", node["maintenance"]), ("offline", node["offline"])]
        if node["powered"] is not None:
            entries.append(("powered", node["powered"]))
        entries += [("master_capable", node["master_capable"]), ("vm_capable", node["vm_capable"])]
        if node["vm_capable"]:
            entries += [("primary for instances", sorted(node["pinst_list"])),
                        ("secondary for instances", sorted(node["sinst_list"]))]
        entries.append(("node parameters", info.params(node["custom_ndparams"], node["ndparams"])))
        shown.append(entries)
    print(info.dump(shown))
    return 0


# --- storage: list-storage, modify-storage, repair-storage, volumes, list-drbd (genet.storage.units) ---

STORAGE_COLUMNS = {"node": "Node", "type": "Type", "name": "Name", "size": "Size", "used": "Used", "free": "Free",
                   "allocatable": "Allocatable"}        # Ganeti's headers, its columns in its order
VOLUME_COLUMNS = {"node": "Node", "phys": "PhysDev", "vg": "VG", "name": "Name", "size": "Size",
                  "instance": "Instance"}
DRBD_COLUMNS = {"node": "Node", "minor": "Minor", "instance": "Instance", "disk": "Disk", "role": "Role",
                "peer": "PeerNode"}
SIZE_FIELDS = ("size", "used", "free")


def print_sized_table(ns, columns: dict[str, str], fields: list[str], rows: list[list]) -> None:
    """Ganeti's GenerateTable for storage: sizes (MiB) in --units, numbers right aligned, Y/N."""
    from genet.cli.units import default_unit
    unit = "h" if getattr(ns, "human_readable", False) else ns.units or default_unit(ns.separator)
    shown = [[base.format_value(int(value) if field in SIZE_FIELDS else value,
                                "unit" if field in SIZE_FIELDS else "text", unit)
              for field, value in zip(fields, row)] for row in rows]
    headers = None if ns.no_headers else [columns.get(f, f) for f in fields]
    for line in base.format_table(headers, shown, ns.separator, [f in SIZE_FIELDS + ("minor",) for f in fields]):
        print(line)


def cmd_list_storage(ns) -> int:
    fields = base.fields_from(ns.output, list(STORAGE_COLUMNS))
    op = opcodes.OpNodeQueryStorage(nodes=ns.names, storage_type=ns.storage_type, output_fields=fields)
    print_sized_table(ns, STORAGE_COLUMNS, fields, base.submit_or_run(ns, [op])[0])
    return 0


def cmd_volumes(ns) -> int:
    fields = base.fields_from(ns.output, list(VOLUME_COLUMNS))
    op = opcodes.OpNodeQueryvols(nodes=ns.names, output_fields=fields)
    print_sized_table(ns, VOLUME_COLUMNS, fields, base.submit_or_run(ns, [op])[0])
    return 0


def cmd_modify_storage(ns) -> int:
    if ns.allocatable is None:
        print("No changes to perform, exiting.", file=sys.stderr)
        return 0
    changes = {"allocatable": ns.allocatable}
    base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpNodeModifyStorage, ns, changes=changes)])
    return 0


def cmd_list_drbd(ns) -> int:
    if len(ns.names) != 1:
        print("Please give one (and only one) node.", file=sys.stderr)
        return 1
    ns.units = ns.human_readable = None
    rows = base.submit_or_run(ns, [opcodes.OpNodeQueryDrbd(node_name=ns.names[0])])[0]
    print_sized_table(ns, DRBD_COLUMNS, list(DRBD_COLUMNS), rows)
    return 0


def build_storage(sub) -> None:
    from genet.cli.units import UNITS
    from genet.ptypes import Bool
    for name, helptext, handler, kinds in (
            ("volumes", "List the logical volumes of nodes and their instances", cmd_volumes, None),
            ("list-storage", "List the storage units of nodes", cmd_list_storage, "--storage-type")):
        p = base.command(sub, name, helptext, handler)
        p.add_argument("--no-headers", action="store_true", help="Do not print the header line")
        p.add_argument("--separator", default=None, help="Separate columns with this string (sizes in MiB)")
        p.add_argument("--units", default=None, choices=UNITS, help="Units for sizes: h (scaled), m, g or t")
        p.add_argument("--human-readable", action="store_true", help="Scaled sizes (--units h), even with"
                       " --separator")
        p.add_argument("-o", "--output", metavar="FIELDS", help="Comma-separated fields; a leading + adds to"
                       f" the defaults ({','.join(STORAGE_COLUMNS if kinds else VOLUME_COLUMNS)})")
        if kinds:
            p.add_argument("-t", kinds, dest="storage_type", default=None, metavar="STORAGE_TYPE",
                           help="Storage type whose units to list, as gnt-node(8) names them (default: the"
                                " first enabled disk template's)")
        p.add_argument("names", nargs="*", metavar="NODE")
    p = base.opcode_command(sub, "modify-storage", "Change a storage unit on a node (lvm-pv: --allocatable)",
                            opcodes.OpNodeModifyStorage, cmd_modify_storage)
    p.add_argument("--allocatable", type=Bool().parse, default=None, metavar="yes|no",
                   help="Whether new volumes may take space from the unit (lvm-pv)")
    base.opcode_command(sub, "repair-storage", "Repair a storage unit on a node (lvm-vg: vgreduce --removemissing)",
                        opcodes.OpRepairNodeStorage)
    p = base.command(sub, "list-drbd", "List the DRBD minors a node uses, with their instances", cmd_list_drbd)
    p.add_argument("--no-headers", action="store_true", help="Do not print the header line")
    p.add_argument("--separator", default=None, help="Separate columns with this string")
    p.add_argument("names", nargs="*", metavar="NODE")


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.opcode_command(sub, "add", "Add a node to the cluster (prepares it over SSH)", opcodes.OpNodeAdd,
                            cmd_add)
    p.add_argument("--no-ssh-key-check", action="store_true", help="Do not check the node's SSH host key")
    p.add_argument("--no-node-setup", action="store_true",
                   help="Do not prepare the node over SSH (it runs genet-noded with the cluster certificate already)")
    base.opcode_command(sub, "remove", "Remove a node from the cluster", opcodes.OpNodeRemove)
    base.opcode_command(sub, "modify", "Change a node's role flags", opcodes.OpNodeSetParams,
                        base.modify_command(opcodes.OpNodeSetParams, "node"))
    p = base.opcode_command(sub, "migrate", "Live-migrate every instance off a node", opcodes.OpNodeMigrate,
                            asks=True)
    p.add_argument("--non-live", dest="mode", action="store_const", const="non-live",
                   help="Migrate with the guests paused (Ganeti's spelling of --migration-mode non-live)")
    base.opcode_command(sub, "evacuate", "Move every instance off a node", opcodes.OpNodeEvacuate, asks=True)
    base.opcode_command(sub, "failover", "Fail over every instance off a node", opcodes.OpNodeFailover, asks=True)
    base.add_object_commands(sub, "node", "node", "NODE", NODE_DEFAULT, cmd_info, tag_kind="node")
    build_storage(sub)
    from genet.cli import restricted_command
    restricted_command.build(sub)
    node_power.build(sub)


def main(argv=None) -> int:
    return base.run("gnt-node", build, argv)


if __name__ == "__main__":
    sys.exit(main())
