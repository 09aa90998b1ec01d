"""What every block works with: the cluster as found at the start, the two ways in, the report.

The facts (nodes, templates, OS) are read once over the RAPI, before the first block, so that
each block decides from the same picture whether it applies. The instances the suite creates
are remembered, so that whatever a failed block leaves behind is removed at the end and the
cluster holds the same instances after a run as before it.
"""
from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from qa import templates as tpl
from qa.known_bugs import known_bug
from qa.rapi import RapiClient, RapiError
from qa.report import BlockAborted, CheckFailed, Reporter, Skip
from qa.ssh import Result, SshRunner

# OS definitions that install nothing, preferred in this order when --os is not given
CHEAP_OSES = ("noop", "image", "debootstrap+default", "debootstrap")


@dataclass
class Options:
    """The suite's settings from the command line (see qa.cli)."""
    templates: list[str] | None = None      # None: every enabled template
    node_count: int | None = None           # use at most this many nodes
    os: str | None = None
    disk_size: int = 1024                   # MiB, Ganeti's default minimum instance policy
    grow_by: int = 128                      # MiB
    prefix: str = ""                        # instance names start with it
    add_args: list[str] = field(default_factory=list)   # extra gnt-instance add arguments
    run_known_bugs: bool = False            # run the checks qa.known_bugs lists instead of skipping them


@dataclass
class Facts:
    """The cluster as the suite found it."""
    name: str
    master: str
    nodes: list[str]                        # usable nodes (online, undrained, vm capable), master first
    all_nodes: list[str]
    enabled: list[str] | None               # enabled templates, None if the cluster does not say
    oses: list[str]
    instances: list[str]                    # instances that existed before the run


class Context:
    """Passed to every block: checks, commands on the master, RAPI requests, instance helpers."""

    def __init__(self, reporter: Reporter, ssh: SshRunner, rapi: RapiClient, options: Options):
        self.reporter, self.ssh, self.rapi, self.options = reporter, ssh, rapi, options
        self.facts: Facts | None = None
        self.created: list[str] = []        # names of instances this run created, in order
        self._serial = itertools.count(1)
        if not options.prefix:
            options.prefix = f"qa-{secrets.token_hex(2)}-"

    # --- reporting and commands ---------------------------------------------------

    def check(self, block: str, name: str, required: bool = False):
        return self.reporter.check(block, name, required)

    def gnt(self, *argv: str, check: bool = True) -> Result:
        """A gnt-* command on the master, e.g. ``ctx.gnt("gnt-node", "list")``."""
        return self.ssh.run(argv, check=check)

    def gnt_rows(self, command: str, fields: list[str], *names: str) -> list[list[str]]:
        """``COMMAND list`` rows of ``fields``, parsed (no headers, ``|`` separated)."""
        out = self.gnt(command, "list", "--no-headers", "--separator=|", "-o", ",".join(fields), *names).stdout
        return [line.split("|") for line in out.splitlines() if line.strip()]

    # --- the cluster ------------------------------------------------------------------

    def discover(self) -> Facts:
        """Read the facts over the RAPI (failing here ends the run: nothing else can work)."""
        info = self.rapi.get("/2/info")
        nodes = self.rapi.get("/2/nodes", bulk=1)
        try:
            groups = self.rapi.get("/2/groups", bulk=1)
        except RapiError:
            groups = []
        oses = self.rapi.get("/2/os")
        instances = [i["name"] for i in self.rapi.get("/2/instances", bulk=1)]
        master = info["master"]
        usable = [n["name"] for n in nodes
                  if not n.get("offline") and not n.get("drained") and n.get("vm_capable", True)]
        usable.sort(key=lambda name: (name != master, name))
        if self.options.node_count:
            usable = usable[:self.options.node_count]
        self.facts = Facts(name=info["name"], master=master, nodes=usable,
                           all_nodes=sorted(n["name"] for n in nodes),
                           enabled=tpl.enabled_templates(info, groups), oses=sorted(oses),
                           instances=sorted(instances))
        return self.facts

    def os_name(self) -> str:
        if self.options.os:
            return self.options.os
        for name in CHEAP_OSES:
            if name in self.facts.oses:
                return name
        if not self.facts.oses:
            raise Skip("the cluster offers no OS definition (give one with --os)")
        return self.facts.oses[0]

    def templates(self) -> list[tuple[str, str | None]]:
        """Each template to exercise, with the reason to skip it (None: run it).

        Asked for with --templates, else every enabled one; a template must be enabled (when
        the cluster says which are) and creatable from nothing."""
        enabled = self.facts.enabled
        wanted = self.options.templates or enabled or ["diskless"]
        plan = []
        for name in tpl.ordered(wanted):
            if enabled is not None and name not in enabled:
                plan.append((name, f"template {name} is not enabled on the cluster "
                                   f"(enabled: {', '.join(enabled) or 'none'})"))
            elif name in tpl.NOT_CREATABLE:
                plan.append((name, tpl.NOT_CREATABLE[name]))
            else:
                plan.append((name, None))
        return plan

    def runnable_templates(self, predicate=lambda t: True) -> list[str]:
        return [name for name, reason in self.templates() if reason is None and predicate(name)]

    def per_template(self, block: str, body, plan: list[tuple[str, str | None]]) -> None:
        """Run ``body(ctx, "BLOCK[TEMPLATE]", template)`` for each template of ``plan`` whose
        reason to skip is None; a failed step ends that template's block, a Skip skips the rest."""
        for template, reason in plan:
            name = f"{block}[{template}]"
            if reason:
                self.reporter.skipped_check(name, "all", reason)
                continue
            try:
                body(self, name, template)
            except BlockAborted:
                pass
            except Skip as skip:
                self.reporter.skipped_check(name, "all", str(skip))

    def unless_known_bug(self, check: str, template: str) -> None:
        """Skip, naming the bug, if ``check`` is known to fail for ``template`` (qa.known_bugs)."""
        bug = known_bug(check, template)
        if bug and not self.options.run_known_bugs:
            raise Skip(f"{bug} (--run-known-bugs runs it)")

    def need_nodes(self, count: int, why: str) -> list[str]:
        """The usable nodes (master first); Skip if there are fewer than ``count``."""
        if len(self.facts.nodes) < count:
            raise Skip(f"{why} needs {count} usable nodes, the cluster has {len(self.facts.nodes)}")
        return list(self.facts.nodes)

    # --- instances --------------------------------------------------------------------

    def new_name(self, purpose: str) -> str:
        return f"{self.options.prefix}{purpose}{next(self._serial)}"

    def instance(self, name: str) -> dict:
        return self.rapi.get(f"/2/instances/{name}")

    def instance_exists(self, name: str) -> bool:
        try:
            self.instance(name)
        except RapiError as err:
            if err.status == 404:
                return False
            raise
        return True

    def add_instance(self, name: str, template: str, nodes: list[str], start: bool = True) -> None:
        """``gnt-instance add`` on ``nodes`` (primary, and secondary for a mirrored template)."""
        argv = ["gnt-instance", "add", "-t", template, "-o", self.os_name(),
                "-n", ":".join(nodes), "--no-name-check", "--no-ip-check"]
        if tpl.has_disks(template):
            argv += ["--disk", f"0:size={self.options.disk_size}M"]
        if not start:
            argv.append("--no-start")
        argv += [*self.options.add_args, name]
        self.created.append(name)
        self.gnt(*argv)

    def remove_instance(self, name: str) -> None:
        self.gnt("gnt-instance", "remove", "-f", name)
        if self.instance_exists(name):
            raise CheckFailed(f"instance {name} is still listed by the RAPI after its removal")

    def renamed(self, old: str, new: str) -> None:
        """Keep the list of created instances right after a rename."""
        self.created = [new if name == old else name for name in self.created]
        if new not in self.created:
            self.created.append(new)

    def expect(self, name: str, **wanted) -> dict:
        """The instance's RAPI record; CheckFailed naming every field that differs."""
        record = self.instance(name)
        wrong = {key: record.get(key.replace("__", ".")) for key, value in wanted.items()
                 if record.get(key.replace("__", ".")) != value}
        if wrong:
            raise CheckFailed(f"instance {name}: expected {wanted}, the RAPI says {wrong}")
        return record
