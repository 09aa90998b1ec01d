"""gnt-node: add, remove, list, inspect and change nodes."""
from __future__ import annotations

import json
import os
import sys

from genet import config, errors, luxi, netutils, opcodes, paths
from genet.cli import base, info

SSH_TIMEOUT = 20
NODE_DEFAULT = ["name", "dtotal", "dfree", "mtotal", "mfree", "pinst_cnt", "sinst_cnt"]   # Ganeti's list columns


def ssh_prepare_node(name: str, address: str, readd: bool, check_host_key: bool) -> dict:
    """Log in to the new node as root (paramiko) and run genet-prepare-node-join there."""
    import paramiko
    request = {"cert": paths.cluster_cert().read_text(), "readd": readd,
               "ssconf": {k: paths.ssconf_file(k).read_text().rstrip("\n") for k in config.SSCONF_KEYS
                          if paths.ssconf_file(k).exists()}}
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
    address = netutils.resolve(op.node_name)
    print(f"-- Preparing node {op.node_name} ({address}) over SSH")
    ssh_prepare_node(op.node_name, address, op.readd, not ns.no_ssh_key_check)
    base.submit_or_run(ns, [op], client)
    return 0


INFO_FIELDS = ["name", "pip", "sip", "pinst_list", "sinst_list", "master_candidate", "drained", "offline",
               "master_capable", "vm_capable", "powered", "ndparams", "custom_ndparams"]


def cmd_info(ns) -> int:
    """Each node in Ganeti's layout and words (a YAML document its tools read)."""
    shown = []
    for node in base.query_named("node", INFO_FIELDS, ns.names, "node"):
        entries = [("Node name", node["name"]), ("primary ip", node["pip"]), ("secondary ip", node["sip"]),
                   ("master candidate", node["master_candidate"]), ("drained", node["drained"]),
                   ("offline", node["offline"])]
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


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.opcode_command(sub, "add", "Add a node to the cluster (prepares it over SSH)", opcodes.OpNodeAdd,
                            cmd_add)
    p.add_argument("--no-ssh-key-check", action="store_true", help="Do not check the node's SSH host key")
    base.opcode_command(sub, "remove", "Remove a node from the cluster", opcodes.OpNodeRemove)
    base.opcode_command(sub, "modify", "Change a node's role flags", opcodes.OpNodeSetParams,
                        base.modify_command(opcodes.OpNodeSetParams, "node"))
    base.opcode_command(sub, "migrate", "Live-migrate every instance off a node", opcodes.OpNodeMigrate, asks=True)
    base.opcode_command(sub, "evacuate", "Move every instance off a node", opcodes.OpNodeEvacuate, asks=True)
    base.opcode_command(sub, "failover", "Fail over every instance off a node", opcodes.OpNodeFailover, asks=True)
    base.add_object_commands(sub, "node", "node", "NODE", NODE_DEFAULT, cmd_info, tag_kind="node")


def main(argv=None) -> int:
    return base.run("gnt-node", build, argv)


if __name__ == "__main__":
    sys.exit(main())
