"""The command line of ``python -m qa`` and the run: discover the cluster, run the blocks in
order, remove what a failed block left behind, print the summary.

A block that breaks outside its checks (an SSH login that stops working, a RAPI that goes
away) is one failure of its own, and the next block still runs: one run reports as much of
the cluster's state as it can.
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import Callable, Sequence

from qa import blocks as qa_blocks
from qa.context import Context, Options
from qa.rapi import RapiClient, tls_context
from qa.report import BlockAborted, Reporter, Skip, describe
from qa.ssh import SshRunner


def size_mib(text: str) -> int:
    """``64M``, ``1G``, ``512`` (MiB) -> MiB."""
    match = re.fullmatch(r"\s*(\d+)\s*([mMgGtT]?)i?[bB]?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 1G)")
    return int(match.group(1)) * {"": 1, "m": 1, "g": 1024, "t": 1024 * 1024}[match.group(2).lower()]


def name_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m qa",
        description="End-to-end QA of a running genet (or Ganeti) cluster: real operations in "
                    "ordered blocks, through gnt-* over SSH on the master and through the RAPI.")
    parser.add_argument("--rapi", required=True, metavar="URL", help="RAPI base URL, e.g. https://HOST:5080")
    parser.add_argument("--rapi-user", metavar="USER", help="RAPI user with write access")
    parser.add_argument("--rapi-password", metavar="PASSWORD", help="its password")
    parser.add_argument("--rapi-password-file", metavar="FILE",
                        help="read the password from FILE (first line) instead")
    parser.add_argument("--rapi-ca", metavar="FILE",
                        help="the cluster's certificate: the RAPI's must chain to it (host name not checked)")
    parser.add_argument("--no-verify", action="store_true", help="do not check the RAPI's certificate")
    parser.add_argument("--ssh", required=True, metavar="USER@HOST", help="SSH login on the master node")
    parser.add_argument("--ssh-option", action="append", default=[], metavar="OPTION",
                        help="passed to ssh as -o OPTION (repeatable), e.g. IdentityFile=/path")
    parser.add_argument("--templates", type=name_list, metavar="T1,T2",
                        help="disk templates to exercise (default: every enabled one)")
    parser.add_argument("--node-count", type=int, metavar="N", help="use at most N nodes")
    parser.add_argument("--blocks", type=name_list, metavar="B1,B2",
                        help=f"run only these blocks ({','.join(qa_blocks.NAMES)})")
    parser.add_argument("--os", metavar="NAME", help="OS of the instances (default: noop, image, or the first)")
    parser.add_argument("--disk-size", type=size_mib, default=1024, metavar="SIZE",
                        help="size of each instance's disk (default 1G)")
    parser.add_argument("--grow-by", type=size_mib, default=128, metavar="SIZE",
                        help="how much grow-disk adds (default 128M)")
    parser.add_argument("--instance-prefix", default="", metavar="PREFIX",
                        help="instance names start with it (default qa-XXXX-, XXXX random)")
    parser.add_argument("--add-args", type=shlex.split, default=[], metavar="ARGS",
                        help="more arguments for gnt-instance add, e.g. '-B memory=256M --net 0:link=br0'")
    parser.add_argument("--run-known-bugs", action="store_true",
                        help="run the checks skipped for a known bug (qa/known_bugs.py)")
    parser.add_argument("--timeout", type=float, default=900, metavar="SECONDS",
                        help="longest a single command or job may take (default 900)")
    return parser


def context_from(args: argparse.Namespace, reporter: Reporter) -> Context:
    password = args.rapi_password
    if args.rapi_password_file:
        with open(args.rapi_password_file) as handle:
            password = handle.readline().rstrip("\n")
    rapi = RapiClient(args.rapi, args.rapi_user, password, tls_context(args.rapi_ca, not args.no_verify),
                      timeout=min(args.timeout, 120))
    ssh = SshRunner(args.ssh, args.ssh_option, timeout=args.timeout)
    options = Options(templates=args.templates, node_count=args.node_count, os=args.os,
                      disk_size=args.disk_size, grow_by=args.grow_by, prefix=args.instance_prefix,
                      add_args=args.add_args, run_known_bugs=args.run_known_bugs)
    return Context(reporter, ssh, rapi, options)


def run_suite(ctx: Context, blocks: Sequence[tuple[str, Callable[[Context], None]]]) -> int:
    """Run ``blocks`` against the cluster; the exit status (0 only if no check failed)."""
    reporter = ctx.reporter
    with reporter.check("setup", "read the cluster over the RAPI") as setup:
        facts = ctx.discover()
        reporter.out.write(f"# cluster {facts.name}, master {facts.master}, usable nodes "
                           f"{', '.join(facts.nodes)}, templates "
                           f"{', '.join(t for t, why in ctx.templates() if not why) or 'none'}\n")
    if setup.ok:
        try:
            for name, block in blocks:
                try:
                    block(ctx)
                except BlockAborted:
                    pass
                except Skip as skip:
                    reporter.skipped_check(name, "all", str(skip))
                except Exception as exc:       # outside any check: the block itself broke
                    reporter.failed_check(name, "(block)", describe(exc))
        finally:                               # also after Ctrl-C: leave no instance behind
            cleanup(ctx)
    return reporter.finish()


def cleanup(ctx: Context) -> None:
    """Remove the instances the run created that are still there (after a failed block)."""
    for name in dict.fromkeys(ctx.created):
        try:
            exists = ctx.instance_exists(name)
        except Exception as exc:
            ctx.reporter.failed_check("cleanup", name, describe(exc))
            continue
        if exists:
            with ctx.check("cleanup", f"remove leftover instance {name}"):
                ctx.gnt("gnt-instance", "remove", "-f", name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    chosen = qa_blocks.BLOCKS
    if args.blocks:
        unknown = sorted(set(args.blocks) - set(qa_blocks.NAMES))
        if unknown:
            build_parser().error(f"unknown block(s) {', '.join(unknown)}; known: {', '.join(qa_blocks.NAMES)}")
        chosen = [(name, run) for name, run in qa_blocks.BLOCKS if name in args.blocks]
    try:
        return run_suite(context_from(args, Reporter(sys.stdout)), chosen)
    except OSError as exc:          # e.g. an unreadable password file or CA file
        print(f"python -m qa: {exc}", file=sys.stderr)
        return 2
