"""The htools' command-line options, each defined once with Ganeti's names and help.

Every program picks the options it takes by name (``build_parser("hbal", [...])``), so an
option means the same in hbal, hspace and hail, as in Ganeti's Ganeti.HTools.CLI.
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from fractions import Fraction

from genet import __version__
from genet.cli.gnt_job import PRIORITIES


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot parse {text!r} as a number") from None
    return value


def _positive(text: str) -> float:
    value = _ratio(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("Invalid value of the max-cpu ratio, expected >0")
    return value


def _yes_no(text: str) -> bool:
    if text not in ("yes", "no"):
        raise argparse.ArgumentTypeError(f"Invalid choice '{text}', pass one of 'yes' or 'no'")
    return text == "yes"


class GanetiOptionError(Exception):
    """An option value Ganeti's parser refuses, with Ganeti's words (the program exits 1)."""


def _hs_int(what: str):
    """Ganeti's tryRead for an integer: its message names ``what``."""
    def parse(text: str) -> int:
        if not re.fullmatch(r"\s*-?\d+\s*", text):
            raise GanetiOptionError(f"{what}: cannot parse string '{text}'")
        return int(text)
    return parse


_DECIMAL_MIB = Fraction(1000, 1024) ** 2
# Ganeti's parseUnitValue, in its order: (the unit as written, the unit upper-cased, factor to MiB)
UNITS = (("m", "MIB", 1), ("g", "GIB", 1024), ("t", "TIB", 1024 ** 2),
         ("M", "MB", _DECIMAL_MIB), ("G", "GB", _DECIMAL_MIB * 1000), ("T", "TB", _DECIMAL_MIB * 1000 ** 2))


def parse_unit(text: str) -> int:
    """Ganeti's parseUnit: a number of MiB with an optional unit (m, g, t binary; M, G, T decimal)."""
    m = re.match(r"\s*(-?\d+)(.*)$", text, re.S)
    if not m:
        raise ValueError(f"Can't parse string '{text}'")
    unit = m.group(2).lstrip(" ")
    factors = [f for short, long, f in UNITS if unit == short or unit.upper() == long]
    if unit and not factors:
        raise ValueError(f"Unknown unit '{unit}'")
    factor = factors[0] if unit else 1
    return int(int(m.group(1)) * Fraction(factor))


def ispec(descr: str):
    """Ganeti's parseISpecString: 'disk,ram,cpu[,spindles]' as (cpu, mem, disk, spindles)."""
    def parse(text: str) -> tuple[int, int, int, int]:
        parts = text.split(",")
        if not 3 <= len(parts) <= 4:
            raise GanetiOptionError(f"Invalid {descr} specification: '{text}', expected disk,ram,cpu")
        values = []
        for what, value in zip(("disk", "memory"), parts):
            try:
                values.append(parse_unit(value))
            except ValueError as err:
                raise GanetiOptionError(f"{descr} specs {what}: {err}") from None
        values += [_hs_int(f"{descr} specs {what}")(value) for what, value in zip(("cpus", "spindles"), parts[2:])]
        dsk, mem, cpu, spn = values + [1] * (4 - len(values))
        return cpu, mem, dsk, spn
    return parse


def _spindle_use(text: str) -> int:
    value = _hs_int("parsing spindle-use")(text)
    if value < 0:
        raise GanetiOptionError("Invalid value of the spindle-use (expected >= 0)")
    return value


GANETI_TEMPLATES = ("diskless", "file", "sharedfile", "plain", "blockdev", "drbd", "rbd", "ext", "gluster")


def _disk_template(text: str) -> str:
    if text not in GANETI_TEMPLATES:
        raise GanetiOptionError(f'Invalid string value for type DiskTemplate: "{text}"')
    return text


def _choice_yes_no(text: str) -> bool:
    if text not in ("yes", "no"):
        raise GanetiOptionError(f"Invalid choice '{text}', pass one of 'yes' or 'no'")
    return text == "yes"


def _list(text: str) -> list[str]:
    return text.split(",") if text else []


def _print_nodes(text: str) -> list[str]:
    """-p FIELDS: a leading + adds the fields to the default ones (Ganeti's oPrintNodes)."""
    return (["+"] + _list(text[1:])) if text.startswith("+") else _list(text)


# name: (flags, argparse keyword arguments)
OPTIONS = {
    "print_nodes": (("-p", "--print-nodes"), dict(nargs="?", const=[], type=_print_nodes, metavar="FIELDS",
                                                  help="print the final node list")),
    "print_instances": (("--print-instances",), dict(action="store_true", help="print the final instance map")),
    "print_commands": (("-C", "--print-commands"), dict(nargs="?", const="-", metavar="FILE",
                       help="print the ganeti command list for reaching the solution, if an argument "
                            "is passed then write the commands to a file named as such")),
    "text_data": (("-t", "--text-data"), dict(metavar="FILE", help="the cluster data FILE")),
    "evac_mode": (("-E", "--evac-mode"), dict(action="store_true",
                  help="enable evacuation mode, where the algorithm only moves instances away from "
                       "offline and drained nodes")),
    "restricted_migration": (("--restricted-migration",), dict(action="store_true",
                             help="disallow replace-primary moves (aka frf-moves); in evacuation mode, this "
                                  "will ensure that the only migrations are off the drained nodes")),
    "master": (("-m", "--master"), dict(metavar="ADDRESS", help="collect data via RAPI at the given ADDRESS")),
    "luxi": (("-L", "--luxi"), dict(nargs="?", const="", metavar="SOCKET",
                                    help="collect data from the local master daemon (or the given socket)")),
    "exec": (("-X", "--exec"), dict(action="store_true",
             help="execute the suggested moves via Luxi (only available when using it for data gathering)")),
    "first_job_group": (("--first-job-group",), dict(action="store_true",
                        help="only execute the first group of jobs")),
    "reason": (("--reason",), dict(metavar="REASON", help="The reason to pass to the submitted jobs")),
    "group": (("-G", "--group"), dict(metavar="ID", help="the target node group (name or UUID)")),
    "max_length": (("-l", "--max-length"), dict(type=_hs_int("max solution length"), default=-1, metavar="N",
                   help="cap the solution at this many balancing or allocation rounds (useful for very "
                        "unbalanced clusters or empty clusters)")),
    "verbose": (("-v", "--verbose"), dict(action="count", default=1, help="increase the verbosity level")),
    "quiet": (("-q", "--quiet"), dict(action="count", default=0, help="decrease the verbosity level")),
    "offline": (("-O", "--offline"), dict(action="append", default=[], metavar="NODE", help="set node as offline")),
    "static_kvm_node_memory": (("--static-kvm-node-memory",), dict(type=int, default=4096, metavar="N",
                               help="use static node memory [in MB] on KVM instead of value reported by "
                                    "hypervisor. Use 0 to take value reported from hypervisor.")),
    "min_score": (("-e", "--min-score"), dict(type=_ratio, default=1e-9, metavar="EPSILON",
                  help="mininum excess to the N+1 limit to aim for")),
    "max_cpu": (("--max-cpu",), dict(type=_positive, metavar="RATIO",
                help="maximum virtual-to-physical cpu ratio for nodes (from 0 upwards) [default read from "
                     "cluster]")),
    "min_disk": (("--min-disk",), dict(type=_ratio, default=0.0, metavar="RATIO",
                 help="minimum free disk space for nodes (between 0 and 1) [0]")),
    "min_gain": (("-g", "--min-gain"), dict(type=_ratio, default=1e-2, metavar="DELTA",
                 help="minimum gain to aim for in a balancing step before giving up")),
    "min_gain_limit": (("--min-gain-limit",), dict(type=_ratio, default=1e-1, metavar="SCORE",
                       help="minimum cluster score for which we start checking the min-gain")),
    "no_disk_moves": (("--no-disk-moves",), dict(action="store_true",
                      help="disallow disk moves from the list of allowed instance changes, thus allowing only "
                           "the 'cheap' failover/migrate operations")),
    "select_instances": (("--select-instances",), dict(type=_list, default=[], metavar="INSTS",
                         help="only select given instances for any moves")),
    "no_instance_moves": (("--no-instance-moves",), dict(action="store_true",
                          help="disallow instance (primary node) moves from the list of allowed, instance "
                               "changes, thus allowing only slower, but sometimes safer, drbd secondary changes")),
    "ignore_soft_errors": (("--ignore-soft-errors",), dict(action="store_true",
                           help="Ignore any soft restrictions in balancing")),
    "dynu_file": (("-U", "--dynu-file"), dict(metavar="FILE",
                  help="Import dynamic utilisation data from the given FILE")),
    "ignore_dynu": (("--ignore-dynu",), dict(action="store_true", help="Ignore any dynamic utilisation information")),
    "mond": (("--mond",), dict(nargs="?", const=True, default=False, type=_yes_no, metavar="yes|no",
             help="pass either 'yes' or 'no' to query all monDs")),
    "mond_data": (("--mond-data",), dict(metavar="FILE", help="Import data provided by MonDs from the given FILE")),
    "exit_on_missing_mond_data": (("--exit-on-missing-mond-data",), dict(
        action="store_true", help="abort if the data available from the monitoring daemons is incomplete")),
    "exclusion_tags": (("--exclusion-tags",), dict(type=_list, metavar="TAG,...",
                       help="Enable instance exclusion based on given tag prefix")),
    "exclude_instances": (("--exclude-instances",), dict(type=_list, default=[], metavar="INSTS",
                          help="exclude given instances from any moves")),
    "save": (("-S", "--save"), dict(metavar="FILE",
             help="Save cluster state at the end of the processing to FILE")),
    "output_dir": (("-d", "--output-dir"), dict(default=".", metavar="PATH",
                   help="directory in which to write output files")),
    "no_headers": (("--no-headers",), dict(action="store_true", help="do not show a header line")),
    "node_tags": (("--node-tags",), dict(type=_list, metavar="TAG,...", help="Restrict to nodes with the given tags")),
    "offline_maintenance": (("--offline-maintenance",), dict(action="store_true",
                            help="Schedule offline maintenance, i.e., pretend that all instance are offline.")),
    "print_moves": (("--print-moves",), dict(action="store_true", help="print the moves of the instances")),
    "full_evacuation": (("--full-evacuation",), dict(action="store_true",
                        help="fully evacuate the nodes to be rebooted")),
    "skip_non_redundant": (("--skip-non-redundant",), dict(action="store_true",
                           help="Skip nodes that host a non-redundant instance")),
    "ignore_non_redundant": (("--ignore-non-redundant",), dict(action="store_true",
                             help="Pretend that there are no non-redundant instances in the cluster")),
    "force": (("-f", "--force"), dict(action="store_true",
              help="force the execution of this program, even if warnings would otherwise prevent it")),
    "one_step_only": (("--one-step-only",), dict(action="store_true", help="Only do the first step")),
    "no_capacity_checks": (("--no-capacity-checks",), dict(action="store_true",
                           help="disable capacity checks (like global N+1 redundancy)")),
    "restrict_allocation_to": (("--restrict-allocation-to",), dict(type=_list, metavar="NODE,...",
                               help="Restrict allocations to the given set of nodes")),
    "disk_template": (("--disk-template",), dict(type=_disk_template, metavar="TEMPLATE",
                      help="select the desired disk template")),
    "spindle_use": (("--spindle-use",), dict(type=_spindle_use, metavar="SPINDLES",
                    help="select how many virtual spindle instances use [default read from cluster]")),
    "simulate": (("--simulate",), dict(action="append", default=[], metavar="SPEC",
                 help="simulate an empty cluster, given as 'alloc_policy,num_nodes,disk,ram,cpu'")),
    "independent_groups": (("--independent-groups",), dict(action="store_true",
                           help="Consider groups independently")),
    "accept_existing_errors": (("--accept-existing-errors",), dict(action="store_true",
                               help="Accept existing N+1 violations; just don't add new ones")),
    "machine_readable": (("--machine-readable",), dict(nargs="?", const=True, default=False, type=_choice_yes_no,
                         metavar="CHOICE", help="enable machine readable output (pass either 'yes' or 'no' to "
                                                "explicitly control the flag, or without an argument defaults "
                                                "to yes)")),
    "standard_alloc": (("--standard-alloc",), dict(type=ispec("standard"), metavar="STDSPEC",
                       help="enable standard specs allocation, given as 'disk,ram,cpu'")),
    "tiered_alloc": (("--tiered-alloc",), dict(type=ispec("tiered"), metavar="TSPEC",
                     help="enable tiered specs allocation, given as 'disk,ram,cpu'")),
    "no_simulation": (("--no-simulation",), dict(action="store_true",
                      help="do not perform rebalancing simulation")),
    "ialloc_src": (("-I", "--ialloc-src"), dict(metavar="FILE",
                   help="Specify an iallocator spec as the cluster data source")),
    "priority": (("--priority",), dict(choices=tuple(PRIORITIES), metavar="PRIO",
                 help="set the priority of submitted jobs")),
}


def entry(body):
    """A program's main: as Ganeti's, it ends quietly (status 0) when whoever reads its output
    has gone (``hbal ... | head``)."""
    @functools.wraps(body)
    def main(argv=None) -> int:
        try:
            return body(argv)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return main


class GetoptParser(argparse.ArgumentParser):
    """Options whose argument is optional take it only attached (``-pFIELDS``,
    ``--print-nodes=FIELDS``), as with Ganeti's getopt: ``hail -p FILE`` reads FILE as the input.
    A value Ganeti's own parser refuses is refused with its message and status."""

    def _get_value(self, action, arg_string):
        try:
            return super()._get_value(action, arg_string)
        except GanetiOptionError as err:
            print(f"Error while parsing command line arguments:\n{err}", file=sys.stderr)
            raise SystemExit(1) from None

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        optional = {flag: action.option_strings[-1] for action in self._actions if action.nargs == "?"
                    for flag in action.option_strings}
        rewritten = []
        for arg in args:
            if arg == "--":
                rewritten.extend(args[len(rewritten):])
                break
            rewritten.append(f"{optional[arg]}={ATTACHED_NONE}" if arg in optional else arg)
        return super().parse_known_args(rewritten, namespace)


ATTACHED_NONE = "\0"        # stands for "no argument attached" between the rewrite and the type


def _or_const(convert, const):
    def parse(text: str):
        if text == ATTACHED_NONE:
            return const
        return convert(text) if convert else text
    return parse


def build_parser(prog: str, description: str, names: list[str]) -> argparse.ArgumentParser:
    parser = GetoptParser(prog=prog, description=description)
    parser.set_defaults(prog=prog)
    parser.add_argument("-V", "--version", action="version", version=f"{prog} (genet) version {__version__}")
    for name in names:
        flags, kwargs = OPTIONS[name]
        if kwargs.get("nargs") == "?":
            kwargs = {**kwargs, "type": _or_const(kwargs.get("type"), kwargs["const"])}
        parser.add_argument(*flags, dest=name, **kwargs)
    return parser


def verbosity(args) -> int:
    return args.verbose - getattr(args, "quiet", 0)
