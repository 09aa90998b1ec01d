"""Block ``os``: gnt-os as Ganeti's QA drives it (qa_os.py): the OS definitions listed, diagnosed
and described alike, and a temporary definition made valid, hidden, blacklisted, given hypervisor
and OS parameters and made invalid on one node.

The temporary definition is written into the first directory of the cluster's OS search path on
every node (``gnt-cluster command``, relative to the nodes' working directory, which is ``/`` on a
real node and the node's root on a dev cluster) and removed at the end with everything the cluster
keeps for it.
"""
from __future__ import annotations

import re
import shlex

from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "os"
PARAMETER = "funny"


def run(ctx: Context) -> None:
    with ctx.check(BLOCK, "gnt-os list shows the OSes GET /2/os lists"):
        listed = ctx.gnt("gnt-os", "list", "--no-headers").stdout.split()
        if sorted(listed) != sorted(ctx.rapi.get("/2/os")):
            raise CheckFailed(f"gnt-os list shows {listed}, GET /2/os {ctx.rapi.get('/2/os')}")

    with ctx.check(BLOCK, "gnt-os diagnose and info report every listed OS as valid"):
        diagnose = ctx.gnt("gnt-os", "diagnose", check=False).stdout.splitlines()
        described = ctx.gnt("gnt-os", "info").stdout.splitlines()
        for name in {entry.split("+")[0] for entry in listed}:
            if f"OS: {name} [global status: valid]" not in diagnose:
                raise CheckFailed(f"gnt-os diagnose does not call {name} valid: {diagnose}")
            _expect_info(described, name, valid=True, hidden=False, blacklisted=False)

    name = f"{ctx.options.prefix}os".replace("-", "_")
    directory = _temporary_dir(ctx, name)
    try:
        _temporary_checks(ctx, name, directory)
    finally:
        ctx.gnt("gnt-os", "modify", "--hidden=no", "--blacklisted=no", name, check=False)
        ctx.gnt("gnt-cluster", "command", f"rm -rf {shlex.quote(directory)}", check=False)


def _expect_info(lines: list[str], name: str, **facts: bool) -> None:
    """gnt-os info's entry of ``name`` (Ganeti's ``NAME:`` and ``  - KEY: VALUE`` lines) says ``facts``."""
    if f"{name}:" not in lines:
        raise CheckFailed(f"gnt-os info has no line '{name}:'")
    entry = lines[lines.index(f"{name}:") + 1:]
    entry = entry[:next((i for i, line in enumerate(entry) if not line.startswith(" ")), len(entry))]
    for key, value in facts.items():
        if f"  - {key}: {value}" not in entry:
            raise CheckFailed(f"gnt-os info {name} does not say '{key}: {value}': {entry}")


def _temporary_dir(ctx: Context, name: str) -> str:
    """Where the nodes look for OS definitions first, relative to their working directory."""
    match = re.search(r"OS search path:\s*(\S+?)(?:,|$)", ctx.gnt("gnt-cluster", "info").stdout, re.MULTILINE)
    if not match:
        raise Skip("gnt-cluster info does not name the OS search path")
    first = match.group(1)
    here = ctx.gnt("gnt-cluster", "command", "-n", ctx.facts.master, "pwd").stdout
    cwd = next((line.strip() for line in here.splitlines() if line.startswith("/")), "/").rstrip("/")
    return "." + first[len(cwd):] + f"/{name}" if cwd and first.startswith(cwd + "/") else f"{first}/{name}"


def _define(ctx: Context, directory: str, valid: bool, nodes: list[str] | None = None) -> None:
    """An OS of API version 20 whose scripts do nothing; without ``create`` it is invalid."""
    scripts = ["export", "import", "rename", "verify"] + (["create"] if valid else [])
    quoted = shlex.quote(directory)
    command = " && ".join([f"rm -rf {quoted}", f"mkdir -p {quoted}", f"cd {quoted}",
                           *[f"ln -s /bin/true {script}" for script in scripts],
                           "echo 20 > ganeti_api_version", "echo default > variants.list",
                           f"echo '{PARAMETER} this is funny' > parameters.list"])
    argv = ["gnt-cluster", "command"]
    for node in nodes or []:
        argv += ["-n", node]
    ctx.gnt(*argv, command)


def _state(ctx: Context, name: str) -> tuple[bool, bool, bool]:
    """Whether ``name+default`` is in gnt-os list, in GET /2/os, and diagnosed valid (exit 0)."""
    listed = f"{name}+default" in ctx.gnt("gnt-os", "list", "--no-headers").stdout.split()
    diagnosed = ctx.gnt("gnt-os", "diagnose", check=False).returncode == 0
    return listed, f"{name}+default" in ctx.rapi.get("/2/os"), diagnosed


def _temporary_checks(ctx: Context, name: str, directory: str) -> None:
    with ctx.check(BLOCK, "a valid temporary OS: diagnosed valid, listed with its variant", True):
        _define(ctx, directory, valid=True)
        diagnose = ctx.gnt("gnt-os", "diagnose").stdout.splitlines()
        if f"OS: {name} [global status: valid]" not in diagnose:
            raise CheckFailed(f"gnt-os diagnose does not call {name} valid: {diagnose}")
        if _state(ctx, name) != (True, True, True):
            raise CheckFailed(f"{name}+default: (gnt-os list, GET /2/os, diagnose ok) is {_state(ctx, name)}")

    with ctx.check(BLOCK, "gnt-os modify --hidden and --blacklisted (twice each) hide it and refuse it"):
        for hidden, blacklisted in ((True, False), (False, True), (True, True), (False, False)):
            for _ in range(2):       # setting a state it already has is fine
                ctx.gnt("gnt-os", "modify", "--hidden", "yes" if hidden else "no",
                        "--blacklisted", "yes" if blacklisted else "no", name)
            _expect_info(ctx.gnt("gnt-os", "info", name).stdout.splitlines(), name,
                         valid=True, hidden=hidden, blacklisted=blacklisted)
            shown = not (hidden or blacklisted)
            if _state(ctx, name)[:2] != (shown, shown):
                raise CheckFailed(f"hidden={hidden}, blacklisted={blacklisted}: {name}+default in "
                                  f"(gnt-os list, GET /2/os) is {_state(ctx, name)[:2]}")
            if blacklisted:
                ctx.created.append(ctx.new_name("blacklisted"))
                refused = ctx.gnt("gnt-instance", "add", "-t", "diskless", "-o", f"{name}+default", "--no-start",
                                  "-n", ctx.facts.master, "--no-name-check", "--no-ip-check",
                                  ctx.created[-1], check=False)
                if refused.returncode == 0:
                    raise CheckFailed(f"gnt-instance add with the blacklisted OS {name} succeeded")

    with ctx.check(BLOCK, "gnt-os modify -H and -O set the OS's parameters, default removes them"):
        _parameter_checks(ctx, name)

    with ctx.check(BLOCK, "an OS invalid on one node is invalid, unlisted, and diagnose fails"):
        nodes = ctx.need_nodes(2, "an OS valid on some nodes only")
        _define(ctx, directory, valid=False, nodes=[nodes[-1]])
        if _state(ctx, name) != (False, False, False):
            raise CheckFailed(f"{name}+default: (gnt-os list, GET /2/os, diagnose ok) is {_state(ctx, name)}")
        _expect_info(ctx.gnt("gnt-os", "info", name).stdout.splitlines(), name, valid=False)


def _parameter_checks(ctx: Context, name: str) -> None:
    """A hypervisor parameter (set to the cluster's own value) and the OS's parameter, through the
    RAPI's /2/info; an unknown hypervisor is refused."""
    info = ctx.rapi.get("/2/info")
    hypervisor = info["default_hypervisor"]
    values = info["hvparams"].get(hypervisor, {})
    key = next((k for k in sorted(values) if isinstance(values[k], (str, int)) and not isinstance(values[k], bool)
                and str(values[k]) and "," not in str(values[k])), None)
    if key is None:
        raise Skip(f"hypervisor {hypervisor} has no parameter of a plain value")
    ctx.gnt("gnt-os", "modify", "-H", f"{hypervisor}:{key}={values[key]}", "-O", f"{PARAMETER}=yes", name)
    info = ctx.rapi.get("/2/info")
    hvp, osp = info["os_hvp"].get(name, {}), info["osparams"].get(name, {})
    if hvp.get(hypervisor, {}).get(key) != values[key] or osp != {PARAMETER: "yes"}:
        raise CheckFailed(f"/2/info after gnt-os modify: os_hvp {info['os_hvp']}, osparams {info['osparams']}")
    result = ctx.gnt("gnt-os", "modify", "-H", "blahblahblubb:bar=", name, check=False)
    if result.returncode == 0:
        raise CheckFailed("gnt-os modify -H with an unknown hypervisor succeeded")
    ctx.gnt("gnt-os", "modify", "-H", f"{hypervisor}:{key}=default", "-O", f"{PARAMETER}=default", name)
    info = ctx.rapi.get("/2/info")
    if name in info["os_hvp"] or name in info["osparams"]:        # nothing of the run's OS is left
        raise CheckFailed(f"/2/info after the reset: os_hvp {info['os_hvp']}, osparams {info['osparams']}")
