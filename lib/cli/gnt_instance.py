"""gnt-instance: create, start, stop, reboot, remove, list and inspect instances."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from genet import errors, luxi, opcodes
from genet.cli import base, info, instance_info, many
from genet.ptypes import Size

# the default columns of `list` (Ganeti's); the field table itself lives in genet.query, which
# the command does not import: it pulls in pyparsing and would slow every gnt-instance down
INSTANCE_DEFAULT = ["name", "hypervisor", "os", "pnode", "status", "oper_ram"]
# the creation parameters only gnt-backup import offers (as Ganeti's CLI)
IMPORT_ONLY = ("src_node", "src_path", "compress", "identify_defaults")


def os_size(text: str) -> int:
    """A size as --disk takes it (MiB, or with a unit)."""
    try:
        return Size().parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"os_size: {err}") from None


def cmd_add(ns) -> int:
    """Ganeti's default: one NIC with the cluster's parameters unless --net or --no-nics says otherwise;
    -s SIZE is one disk of that size."""
    if ns.no_nics and ns.nics:
        raise errors.OpPrereqError("--no-nics and --net exclude each other", errors.ECode.INVAL)
    extra = {} if ns.nics or ns.no_nics else {"nics": [{}]}
    if ns.os_size is not None:
        if ns.disks:
            raise errors.OpPrereqError("-s/--os-size and --disk exclude each other", errors.ECode.INVAL)
        extra["disks"] = [{"size": ns.os_size}]
    base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpInstanceCreate, ns, **extra)])
    return 0


def modify_extra(ns) -> dict:
    """Ganeti's --offline and --online switches set one opcode parameter."""
    if ns.offline and ns.online:
        raise errors.OpPrereqError("--offline and --online exclude each other", errors.ECode.INVAL)
    return {"offline": True} if ns.offline else {"offline": False} if ns.online else {}


def follow_moves(ns, op, done: str, failed: str) -> int:
    """Ganeti's change-group and evacuate: the opcode submits one job per instance; follow each
    and say how it went (``failed`` takes the number of failed jobs)."""
    client = luxi.Client()
    [result] = base.submit_or_run(ns, [op], client) or [None]
    if result is None:                    # --submit
        return 0
    for name in result.get("failed", []):
        print(f"No node could take instance {name}: it was not created", file=sys.stderr)
    bad = len(result.get("failed", []))
    for _, job_id in result["jobs"]:
        print(f"Waiting for job {job_id} ...")
        try:
            base.poll_job(client, job_id)
        except errors.GenericError as err:
            print(f"Job {job_id}: {errors.format_error(err)}", file=sys.stderr)
            bad += 1
    print(failed.format(bad) if bad else done)
    return 1 if bad else 0


def cmd_batch_create(ns) -> int:
    """Ganeti's batch-create: a JSON array of OpInstanceCreate parameters, one job per instance."""
    try:
        with open(ns.json_file, encoding="utf-8") as f:
            instances = json.load(f)
    except (OSError, ValueError) as err:
        print(f"Can't parse the instance definition file: {err}", file=sys.stderr)
        return 1
    if not isinstance(instances, list) or not all(isinstance(item, dict) for item in instances):
        print("The instance definition file is not a list of dictionaries", file=sys.stderr)
        return 1
    op = base.opcode_from_args(opcodes.OpInstanceMultiAlloc, ns, instances=instances)
    return follow_moves(ns, op, "All instances created successfully.", "There were {} errors during the creation.")


def cmd_change_group(ns) -> int:
    op = base.opcode_from_args(opcodes.OpInstanceChangeGroup, ns)
    return follow_moves(ns, op, f"Instance '{op.instance_name}' changed group successfully.",
                        "There were {} errors while changing group of instance '" + op.instance_name + "'.")


def cmd_info(ns) -> int:
    """Ganeti's rule: instances named, or --all; then each one's details in Ganeti's layout."""
    if not ns.names and not ns.show_all:
        raise errors.OpPrereqError("No instance selected. Please pass in --all if you want to query all"
                                   " instances.", errors.ECode.INVAL)
    if ns.names and ns.show_all:
        raise errors.OpPrereqError("Cannot use --all if you specify instance names.", errors.ECode.INVAL)
    op = opcodes.OpInstanceQueryData(instances=ns.names, static=ns.static, use_locking=not ns.static)
    [found] = base.submit_or_run(ns, [op], feedback=lambda entry: None) or [None]
    if found is None:                     # --submit
        return 0
    if not found:
        print("No instances.")
        return 1
    print(info.dump([instance_info.entries(found[name], ns.roman_integers) for name in found]))
    return 0


def ssh_argv(console: dict, interactive: bool) -> list[str]:
    """The ssh command Ganeti's console description asks for, with genet's key and known hosts."""
    argv = ["ssh", "-q", "-t" if interactive else "-T", "-o", "BatchMode=yes"]
    if os.environ.get("GENET_SSH_KEY"):
        argv += ["-i", os.environ["GENET_SSH_KEY"]]
    if os.environ.get("GENET_SSH_KNOWN_HOSTS"):
        argv += ["-o", f"UserKnownHostsFile={os.environ['GENET_SSH_KNOWN_HOSTS']}"]
    command = console["command"]
    if not interactive and command[0] == "socat":
        # no terminal to put in raw mode; keep the line open until the guest has been quiet for 3 s
        command = ["socat", "-T", "3", "STDIO,ignoreeof", command[-1]]
    return argv + [f"{console['user']}@{console['host']}", "--", *command]


def cmd_console(ns) -> int:
    [console] = base.submit_or_run(ns, [opcodes.OpInstanceConsole(instance_name=ns.instance_name)])
    if console["kind"] == "vnc":
        print(f"Instance {console['instance']} has a VNC console at {console['host']}:{console['port']}"
              f" (display {console['display']})")
        return 0
    argv = ssh_argv(console, sys.stdin.isatty())
    if ns.show_cmd:
        print(" ".join(shlex.quote(a) for a in argv))
        return 0
    sys.stdout.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        raise errors.CommandError(f"cannot run {argv[0]}: {err.strerror}; install the OpenSSH client") from None


def cmd_activate_disks(ns) -> int:
    results = base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpInstanceActivateDisks, ns)])
    for node, name, path in (results or [None])[0] or []:      # nothing with --submit or --dry-run
        print(f"{node}:{name}:{path}")
    return 0


REPLACE_FLAGS = (("on_primary", "replace_on_primary"), ("on_secondary", "replace_on_secondary"),
                 ("auto", "replace_auto"))


def cmd_replace_disks(ns) -> int:
    """Ganeti's rule: exactly one of -p, -s, -a, -n and -I chooses the mode."""
    chosen = [mode for flag, mode in REPLACE_FLAGS if getattr(ns, flag)]
    if ns.remote_node is not None or ns.iallocator is not None:
        chosen += ["replace_new_secondary"] * ((ns.remote_node is not None) + (ns.iallocator is not None))
    if len(chosen) != 1:
        raise errors.OpPrereqError("one and only one of the -p, -s, -a, -n and -I options must be given",
                                   errors.ECode.INVAL)
    base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpInstanceReplaceDisks, ns, mode=chosen[0])])
    return 0


def accept_ganeti_check_switches(parser) -> None:
    """Ganeti checks a new instance name unless told --no-name-check and --no-ip-check; genet
    checks only when asked (--name-check, --ip-check), so Ganeti's switches change nothing."""
    for flag, dest in (("--no-name-check", "name_check"), ("--no-ip-check", "ip_check")):
        parser.add_argument(flag, dest=dest, action="store_false", default=False,
                            help="Do not check (genet's default; accepted for Ganeti scripts)")


def select_os(ns) -> dict | None:
    """Ganeti's --select-os: the valid OSes numbered, the one typed on standard input is installed
    ("x" aborts; nothing chosen without --select-os)."""
    if not ns.select_os:
        return {}
    [found] = base.submit_or_run(ns, [opcodes.OpOsDiagnose()], feedback=lambda entry: None)
    names = [f"{e['name']}+{v}" if v else e["name"] for e in found if e["valid"] and not e["blacklisted"]
             for v in (e["variants"] or [None])]
    print("Available OS templates:")
    for number, name in enumerate(names):
        print(f"{number:>3}: {name}")
    print("  x: exit")
    answer = input("Enter OS template number (or x to abort): ").strip()
    if answer == "x":
        print("User aborted reinstall, exiting", file=sys.stderr)
        return None
    if not answer.isdigit() or int(answer) >= len(names):
        raise errors.OpPrereqError(f"no OS template number {answer!r}", errors.ECode.INVAL)
    return {"os_type": names[int(answer)]}


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.opcode_command(sub, "add", "Create an instance", opcodes.OpInstanceCreate, cmd_add,
                            skip=IMPORT_ONLY)
    accept_ganeti_check_switches(p)
    p.add_argument("-s", "--os-size", metavar="SIZE", type=os_size,
                   help="One disk of this size (Ganeti's short form of --disk 0:size=SIZE)")
    base.opcode_command(sub, "remove", "Remove an instance and its disks", opcodes.OpInstanceRemove, asks=True)
    many.many_command(sub, "startup", "Start instances", opcodes.OpInstanceStartup)
    many.many_command(sub, "shutdown", "Stop instances", opcodes.OpInstanceShutdown)
    many.many_command(sub, "reboot", "Reboot instances (a stopped one is started)", opcodes.OpInstanceReboot)
    base.opcode_command(sub, "migrate", "Move a running instance to another node, live",
                        opcodes.OpInstanceMigrate, asks=True)
    base.opcode_command(sub, "failover", "Stop an instance and start it on another node",
                        opcodes.OpInstanceFailover, asks=True)
    base.opcode_command(sub, "move", "Move a file-disk instance to another node (copies its disks)",
                        opcodes.OpInstanceMove, asks=True)
    base.opcode_command(sub, "grow-disk", "Grow a disk of an instance", opcodes.OpInstanceGrowDisk)
    base.opcode_command(sub, "activate-disks", "Make the disks usable and show where they are",
                        opcodes.OpInstanceActivateDisks, cmd_activate_disks)
    base.opcode_command(sub, "deactivate-disks", "Release the disks of a stopped instance",
                        opcodes.OpInstanceDeactivateDisks)
    accept_ganeti_check_switches(base.opcode_command(sub, "rename", "Rename a stopped instance",
                                                     opcodes.OpInstanceRename))
    p = many.many_command(sub, "reinstall", "Install the OS again on stopped instances", opcodes.OpInstanceReinstall,
                          asks=True, tags=False, extra=select_os)
    p.add_argument("--select-os", action="store_true", help="Choose the OS from a numbered list of the valid ones")
    base.opcode_command(sub, "recreate-disks", "Create the missing disks of a stopped instance again",
                        opcodes.OpInstanceRecreateDisks)
    p = base.opcode_command(sub, "replace-disks", "Rebuild the disks of a mirrored instance",
                            opcodes.OpInstanceReplaceDisks, cmd_replace_disks)
    for flags, dest, text in ((("-p", "--on-primary"), "on_primary", "Replace the disks on the primary node"),
                              (("-s", "--on-secondary"), "on_secondary", "Replace the disks on the secondary node"),
                              (("-a", "--auto"), "auto", "Replace the faulty disks on whichever node has them")):
        p.add_argument(*flags, dest=dest, action="store_true", help=text)
    p = base.opcode_command(sub, "modify", "Change parameters, add or remove disks and NICs",
                            opcodes.OpInstanceSetParams,
                            base.modify_command(opcodes.OpInstanceSetParams, "instance", extra=modify_extra))
    p.add_argument("--offline", action="store_true", help="Mark the stopped instance offline")
    p.add_argument("--online", action="store_true", help="Mark the offline instance online again (down)")
    p = base.command(sub, "batch-create", "Create the instances a JSON file describes", cmd_batch_create)
    p.add_argument("json_file", metavar="JSON_FILE", help="JSON array of instance creations (OpInstanceCreate"
                   " parameters each)")
    base.add_opcode_options(p, opcodes.OpInstanceMultiAlloc)
    base.add_submit_options(p)
    base.opcode_command(sub, "change-group", "Move an instance to the nodes of another node group",
                        opcodes.OpInstanceChangeGroup, cmd_change_group)
    p = base.add_object_commands(sub, "instance", "instance", "INSTANCE", INSTANCE_DEFAULT, cmd_info)
    base.add_info_options(p)
    p.add_argument("-s", "--static", action="store_true",
                   help="Only the configuration: do not ask the nodes for the live state")
    p.add_argument("--all", dest="show_all", action="store_true", help="Show every instance")
    p = base.command(sub, "console", "Connect to the instance's serial console", cmd_console)
    p.add_argument("instance_name", metavar="INSTANCE")
    p.add_argument("--show-cmd", action="store_true", help="Print the command instead of running it")
    base.add_tag_commands(sub, "instance", "INSTANCE")     # after console, as gnt-instance --help lists them


def main(argv=None) -> int:
    return base.run("gnt-instance", build, argv)


if __name__ == "__main__":
    sys.exit(main())
