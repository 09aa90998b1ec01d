"""The man pages under man/ document every command, subcommand and option genet has.

Subcommands and options are read from the real argparse parsers, field names,
exit codes, verify codes and environment variables from the code, so a new
option or field without documentation makes a test here fail.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import re
import shlex
from pathlib import Path

import pytest

from genet import bootstrap, errors, qfilter
from genet.cli import base as cli_base
from genet.daemons import daemon, masterd, noded
from genet.jobs import JOB_FIELDS, JobStatus
from genet.query import INSTANCE_FIELDS, NODE_FIELDS

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "man"

GNT_MODULES = {
    "gnt-cluster": "genet.cli.gnt_cluster",
    "gnt-node": "genet.cli.gnt_node",
    "gnt-job": "genet.cli.gnt_job",
    "gnt-debug": "genet.cli.gnt_debug",
    "gnt-filter": "genet.cli.gnt_filter",
    "gnt-instance": "genet.cli.gnt_instance",
    "gnt-os": "genet.cli.gnt_os",
    "gnt-group": "genet.cli.gnt_group",
    "gnt-network": "genet.cli.gnt_network",
    "gnt-backup": "genet.cli.gnt_backup",
    "gnt-storage": "genet.cli.gnt_storage",
}
REQUIRED_PAGES = {  # page name -> manual section
    "genet": 7,
    "gnt-cluster": 8, "gnt-node": 8, "gnt-job": 8, "gnt-debug": 8, "gnt-filter": 8, "gnt-instance": 8, "gnt-os": 8,
    "gnt-group": 8, "gnt-network": 8, "gnt-backup": 8, "gnt-storage": 8,
    "genet-masterd": 8, "genet-rapi": 8, "genet-noded": 8, "genet-daemon": 8, "genet-watcher": 8,
    "genet-prepare-node-join": 8, "genet-oob-ipmi": 8, "genet-oob-script": 8, "dev-cluster": 8,
    "build-test-guest": 8,
    "hbal": 1, "htools": 1, "hscan": 1, "hinfo": 1, "hail": 1, "hroller": 1,
}
ALL_PAGES = sorted(set(REQUIRED_PAGES) | {p.stem for p in MAN.glob("*.rst")})
TITLE = re.compile(r"^([\w.-]+)\((\d)\) genet$")
UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1*$")


# --- reading the pages --------------------------------------------------------

def page(name: str) -> str:
    path = MAN / f"{name}.rst"
    assert path.is_file(), f"man page {path} is missing"
    return path.read_text()


def headings(text: str) -> list[tuple[int, str, str]]:
    """(line index, title, underline character) of every section heading.

    A heading is an unindented line followed by an unindented underline at least
    as long; indented lines (literal blocks, definitions) never count.
    """
    lines = text.splitlines()
    found = []
    for i in range(len(lines) - 1):
        title, under = lines[i].rstrip(), lines[i + 1].rstrip()
        if (title and not title[0].isspace() and not UNDERLINE.match(title)
                and UNDERLINE.match(under) and len(under) >= len(title)):
            found.append((i, title, under[0]))
    return found


def section(text: str, title: str, char: str | None = None) -> str:
    """The body of the section called ``title``, up to the next heading of its level or above."""
    lines = text.splitlines()
    heads = headings(text)
    levels: list[str] = []
    for _, _, c in heads:
        if c not in levels:
            levels.append(c)
    for n, (i, t, c) in enumerate(heads):
        if t == title and (char is None or c == char):
            end = len(lines)
            for j, _, c2 in heads[n + 1:]:
                if levels.index(c2) <= levels.index(c):
                    end = j
                    break
            return "\n".join(lines[i + 2:end])
    raise AssertionError(f"no section {title!r}" + (f" (underlined with {char!r})" if char else ""))


def mentions(text: str, word: str) -> bool:
    """``word`` (an option such as -C or --node) occurs on its own, not inside --node-group."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


# --- reading the parsers ------------------------------------------------------

def gnt_parser(prog: str) -> argparse.ArgumentParser:
    """The parser exactly as base.run builds it for ``prog``."""
    parser = argparse.ArgumentParser(prog=prog)
    importlib.import_module(GNT_MODULES[prog]).build(parser)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand by its name (a Ganeti alias, sharing the parser, is not one: genet(7) lists them)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            aliases = {alias for names in cli_base.ALIASES.values() for alias in names}
            return {name: sub for name, sub in action.choices.items() if name not in aliases}
    raise AssertionError(f"{parser.prog} has no subcommands")


# the options every subcommand has (cli.base.command), explained once in genet(7)
COMMON_OPTIONS = ("-d", "--debug", "--reason")


def documented_words(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string (but -h/--help and the common options) and every fixed choice of a subcommand."""
    words = []
    for action in parser._actions:
        words += [s for s in action.option_strings if s not in ("-h", "--help", *COMMON_OPTIONS)]
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            words += [str(c) for c in action.choices]
    return words


def missing_subcommand_sections(prog: str, parser: argparse.ArgumentParser) -> list[str]:
    text = page(prog)
    missing = []
    for name in subcommands(parser):
        try:
            synopsis, _ = split_synopsis(section(text, name.upper(), "~"))
        except AssertionError:
            missing.append(f"{name}: no section {name.upper()!r}")
            continue
        if f"**{name}**" not in synopsis:
            missing.append(f"{name}: the section does not open with a synopsis naming **{name}**")
    return missing


def split_synopsis(body: str) -> tuple[str, str]:
    """A subcommand section's first paragraph (its synopsis) and the rest (the explanations)."""
    paragraphs = body.strip("\n").split("\n\n", 1)
    return paragraphs[0], paragraphs[1] if len(paragraphs) > 1 else ""


def undocumented_options(prog: str, parser: argparse.ArgumentParser) -> list[str]:
    """Options missing from their subcommand's synopsis or explained nowhere in its section.

    An option every subcommand shares may be explained once, before the first
    subcommand section of COMMANDS (dev-cluster's --dir).
    """
    text = page(prog)
    commands = section(text, "COMMANDS")
    first = next((i for i, _, c in headings(commands) if c == "~"), None)
    shared = "\n".join(commands.splitlines()[:first])
    missing = []
    for name, sub in subcommands(parser).items():
        synopsis, explained = split_synopsis(section(text, name.upper(), "~"))
        for word in documented_words(sub):
            if not mentions(synopsis, word):
                missing.append(f"{name} {word} (synopsis)")
            if not mentions(explained, word) and not mentions(shared, word):
                missing.append(f"{name} {word} (explanation)")
    return missing


def help_options(main, capsys) -> tuple[list[str], str]:
    """Option strings (but -h/--help) and the whole text a daemon's own --help prints."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    options = []
    for line in text.splitlines():
        if re.match(r"\s+-", line):
            spec = re.split(r"\s{2,}", line.strip())[0]
            options += [tok for tok in re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", spec)
                        if tok not in ("-h", "--help")]
    return options, text


# --- gnt-* commands -----------------------------------------------------------

def test_every_gnt_cluster_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-cluster", gnt_parser("gnt-cluster")) == []


def test_every_gnt_cluster_option_is_documented():
    assert undocumented_options("gnt-cluster", gnt_parser("gnt-cluster")) == []


def test_every_gnt_node_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-node", gnt_parser("gnt-node")) == []


def test_every_gnt_node_option_is_documented():
    assert undocumented_options("gnt-node", gnt_parser("gnt-node")) == []


def test_every_gnt_job_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-job", gnt_parser("gnt-job")) == []


def test_every_gnt_job_option_is_documented():
    assert undocumented_options("gnt-job", gnt_parser("gnt-job")) == []


def test_every_gnt_debug_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-debug", gnt_parser("gnt-debug")) == []


def test_every_gnt_debug_option_is_documented():
    assert undocumented_options("gnt-debug", gnt_parser("gnt-debug")) == []


def test_every_gnt_filter_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-filter", gnt_parser("gnt-filter")) == []


def test_every_gnt_filter_option_is_documented():
    assert undocumented_options("gnt-filter", gnt_parser("gnt-filter")) == []


def test_every_filter_and_lock_field_is_documented():
    from genet.query import FILTER_FIELDS, LOCK_FIELDS
    assert [f for f in FILTER_FIELDS if f"``{f}``" not in section(page("gnt-filter"), "LIST", "~")] == []
    assert [f for f in LOCK_FIELDS if f"``{f}``" not in section(page("gnt-debug"), "LOCKS", "~")] == []


def test_every_gnt_instance_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-instance", gnt_parser("gnt-instance")) == []


def test_every_gnt_instance_option_is_documented():
    assert undocumented_options("gnt-instance", gnt_parser("gnt-instance")) == []


def test_every_gnt_os_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-os", gnt_parser("gnt-os")) == []


def test_every_gnt_os_option_is_documented():
    assert undocumented_options("gnt-os", gnt_parser("gnt-os")) == []


def test_every_gnt_group_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-group", gnt_parser("gnt-group")) == []


def test_every_gnt_group_option_is_documented():
    assert undocumented_options("gnt-group", gnt_parser("gnt-group")) == []


def test_every_gnt_network_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-network", gnt_parser("gnt-network")) == []


def test_every_gnt_network_option_is_documented():
    assert undocumented_options("gnt-network", gnt_parser("gnt-network")) == []


def test_every_gnt_storage_subcommand_has_a_section_with_its_synopsis():
    assert missing_subcommand_sections("gnt-storage", gnt_parser("gnt-storage")) == []


def test_every_gnt_storage_option_is_documented():
    assert undocumented_options("gnt-storage", gnt_parser("gnt-storage")) == []


def test_every_group_and_network_list_field_is_documented_under_list():
    from genet.query import GROUP_FIELDS, NETWORK_FIELDS
    for name, fields in (("gnt-group", GROUP_FIELDS), ("gnt-network", NETWORK_FIELDS)):
        body = section(page(name), "LIST", "~")
        assert [f for f in fields if f"``{f}``" not in body] == [], name


def test_the_option_check_catches_an_undocumented_option():
    parser = gnt_parser("gnt-debug")
    subcommands(parser)["delay"].add_argument("--no-such-option", action="store_true")
    assert undocumented_options("gnt-debug", parser) == ["delay --no-such-option (synopsis)",
                                                         "delay --no-such-option (explanation)"]


def test_every_node_list_field_is_documented_under_list():
    body = section(page("gnt-node"), "LIST", "~")
    assert [f for f in NODE_FIELDS if f"``{f}``" not in body] == []


def test_every_instance_list_field_is_documented_under_list():
    body = section(page("gnt-instance"), "LIST", "~")
    assert [f for f in INSTANCE_FIELDS if f"``{f}``" not in body] == []


def test_every_instance_status_is_described():
    doc = INSTANCE_FIELDS["status"][2]
    statuses = re.search(r"\(([\w, ]+)\)", doc).group(1).split(", ")
    assert "running" in statuses and "ERROR_nodeoffline" in statuses
    body = section(page("gnt-instance"), "INSTANCE STATUS")
    assert [s for s in statuses if f"*{s}*" not in body] == []


def test_every_parameter_of_every_hypervisor_is_documented():
    from genet.hypervisor.base import HYPERVISORS
    body = section(page("gnt-instance"), "HYPERVISOR PARAMETERS")
    assert [(hv.name, p) for hv in HYPERVISORS.classes() for p in hv.PARAMETERS if f"``{p}``" not in body] == []
    assert "kvm_path" in HYPERVISORS.cls("kvm").PARAMETERS


def test_every_disk_template_is_documented():
    from genet.storage.base import names
    body = section(page("gnt-instance"), "DISK TEMPLATES")
    assert [t for t in names() if f"``{t}``" not in body] == []


def test_every_job_list_field_is_documented_under_list():
    body = section(page("gnt-job"), "LIST", "~")
    assert [f for f in JOB_FIELDS if f"``{f}``" not in body] == []


def test_every_cluster_verify_error_code_is_documented():
    from genet.cmdlib import cluster, cluster_verify_storage
    codes = set(re.findall(r'(?:error|warning)\(\s*"(E[A-Z]+)"',
                           inspect.getsource(cluster) + inspect.getsource(cluster_verify_storage)))
    assert codes, "no verify error codes found in genet.cmdlib.cluster"
    body = section(page("gnt-cluster"), "VERIFY", "~")
    assert sorted(c for c in codes if f"``{c}``" not in body) == []


@pytest.mark.parametrize("name", [*GNT_MODULES, "genet"])
def test_every_exit_code_is_listed_under_exit_status(name):
    body = section(page(name), "EXIT STATUS")
    listed = set(re.findall(r"^(\d+)$", body, re.MULTILINE))
    assert sorted(int(c) for c in errors.ExitCode if str(int(c)) not in listed) == []


def test_every_job_status_is_described():
    for name, title in (("genet", "JOBS"), ("gnt-job", "DESCRIPTION")):
        body = section(page(name), title)
        assert [s.value for s in JobStatus if f"*{s.value}*" not in body] == [], name


# --- daemons and tools ----------------------------------------------------------

def test_genet_masterd_page_documents_every_option(capsys):
    options, _ = help_options(masterd.main, capsys)
    assert {"--workers", "--no-voting"} <= set(options)
    body = section(page("genet-masterd"), "OPTIONS")
    assert [o for o in options if not mentions(body, o)] == []


def test_genet_noded_page_documents_every_option(capsys):
    options, _ = help_options(noded.main, capsys)
    assert {"--bind", "--port", "--watcher-interval"} <= set(options)
    body = section(page("genet-noded"), "OPTIONS")
    assert [o for o in options if not mentions(body, o)] == []


def test_genet_noded_page_documents_every_procedure_and_what_a_cut_off_node_answers():
    """The procedure list comes from the RPC table; a cut-off node's reads are the procedures of
    the guarded families (instance_*, blockdev_*, os_*, export_*) that the table leaves unguarded."""
    from genet import rpc_defs
    text = page("genet-noded")
    listed = set(re.findall(r"``([a-z0-9_]+)``", section(text, "COMMUNICATION PROTOCOL")))     # x509_cert_create
    assert sorted(set(rpc_defs.PROCEDURES) - listed) == []
    reads = {name for name, proc in rpc_defs.PROCEDURES.items()
             if not proc.guarded and name.startswith(("instance", "blockdev_", "os_", "export_"))}
    cut_off = section(text, "CUT OFF FROM THE MASTER")
    start = cut_off.index("except the reads")
    assert reads == set(re.findall(r"``([a-z_]+)``", cut_off[start:cut_off.index(")", start)]))
    guarded = {name for name, proc in rpc_defs.PROCEDURES.items() if proc.guarded}
    assert all(name.startswith(("instance_", "blockdev_", "os_", "export_")) for name in guarded)


def test_genet_watcher_page_documents_every_option(capsys):
    from genet.daemons import watcher
    options, _ = help_options(watcher.main, capsys)
    assert {"--debug", "--job-age", "--ignore-pause"} <= set(options)
    body = section(page("genet-watcher"), "OPTIONS")
    assert [o for o in options if not mentions(body, o)] == []


def test_genet_rapi_page_documents_every_option(capsys):
    from genet.daemons import rapi
    options, _ = help_options(rapi.main, capsys)
    assert {"--port", "--bind", "--require-authentication"} <= set(options)
    body = section(page("genet-rapi"), "OPTIONS")
    assert [o for o in options if not mentions(body, o)] == []


def test_genet_daemon_page_documents_every_action(capsys):
    _, usage = help_options(daemon.main, capsys)
    actions = re.search(r"\{([\w,]+)\}", usage).group(1).split(",")
    assert actions == ["start", "stop"]
    body = section(page("genet-daemon"), "DESCRIPTION")
    assert [a for a in actions if f"``{a}``" not in body] == []


def test_genet_prepare_node_join_page_documents_every_request_key():
    source = inspect.getsource(bootstrap.prepare_node_join)
    keys = set(re.findall(r'request(?:\[|\.get\()"(\w+)"', source))
    assert {"cert", "ssconf", "readd"} <= keys
    body = section(page("genet-prepare-node-join"), "DESCRIPTION")
    assert sorted(k for k in keys if f"``{k}``" not in body) == []


def test_every_dev_cluster_subcommand_has_a_section_with_its_synopsis():
    from genet_dev import commands
    assert missing_subcommand_sections("dev-cluster", commands.build_parser()) == []


def test_every_dev_cluster_option_is_documented():
    from genet_dev import commands
    assert undocumented_options("dev-cluster", commands.build_parser()) == []


def test_build_test_guest_page_documents_every_option(capsys):
    from genet_dev import testguest
    options, _ = help_options(testguest.main, capsys)
    assert {"--cache", "--force"} <= set(options)
    body = section(page("build-test-guest"), "OPTIONS")
    assert [o for o in options if not mentions(body, o)] == []


def test_build_test_guest_page_documents_the_guest_interface():
    from genet_dev import testguest
    text = page("build-test-guest")
    args = set(re.findall(r"(genet\.\w+)=", testguest.INIT_SCRIPT))
    assert {"genet.ip", "genet.gw", "genet.hostname"} <= args
    guest = section(text, "THE GUEST")
    assert sorted(a for a in args if f"``{a}=" not in guest) == []
    assert testguest.READY_MARKER in guest
    assert str(testguest.DEFAULT_CACHE) in section(text, "THE CACHE")
    assert [f for f in (*testguest.FILES, testguest.MANIFEST)
            if f"``{f}``" not in section(text, "THE CACHE")] == []


def installed_commands() -> list[str]:
    return re.findall(r'"([\w-]+)\s*=\s*genet[\w.]*:\w+"', (ROOT / "setup.py").read_text())


def test_every_installed_command_has_a_man_page():
    scripts = installed_commands()
    assert len(scripts) >= 8
    assert [s for s in scripts if not (MAN / f"{s}.rst").is_file()] == []


def test_genet_installs_the_pages_of_its_commands_and_the_overview_only():
    """The tools of the source tree (dev-cluster, genet-qa) keep their pages there."""
    import genet_build
    pages = genet_build.installed_pages(MAN, installed_commands())
    sections = page_sections()
    assert sections["hbal"] == 1 and sections["gnt-node"] == 8
    assert sorted(pages.values()) == sorted([f"share/man/man{sections[c]}/{c}.{sections[c]}"
                                             for c in installed_commands()]
                                            + ["share/man/man7/genet.7", "share/man/man7/genet-hooks.7",
                                               "share/man/man1/htools.1"])


# --- the overview page ----------------------------------------------------------

def test_genet_page_documents_every_environment_variable_the_code_reads():
    sources = [p.read_text() for folder in ("lib", "storage", "hypervisor", "rapi", "tools")
               for p in (ROOT / folder).rglob("*.py")]
    used = set()
    for text in sources:
        used |= set(re.findall(r'environ(?:\.get\(|\[)\s*"(GENET_\w+)"', text))
        used |= set(re.findall(r'^\w*ENV\w*\s*=\s*"(GENET_\w+)"', text, re.MULTILINE))
    assert {"GENET_ROOT", "GENET_HOSTNAME", "GENET_HOSTS", "GENET_SSH_KEY", "GENET_GUEST_CACHE"} <= used
    body = section(page("genet"), "ENVIRONMENT")
    assert sorted(v for v in used if f"``{v}``" not in body) == []


def test_genet_page_describes_every_node_role():
    body = section(page("genet"), "NODE ROLES")
    for role, letter in (("master", "M"), ("master candidate", "C"), ("regular", "R"),
                         ("drained", "D"), ("offline", "O")):
        assert f"{role} (``{letter}``)" in body, role


def test_every_filter_example_parses_and_names_known_fields():
    from genet.query import GROUP_FIELDS, NETWORK_FIELDS
    known = {"gnt-node": set(NODE_FIELDS), "gnt-job": set(JOB_FIELDS),
             "gnt-instance": set(INSTANCE_FIELDS), "gnt-group": set(GROUP_FIELDS),
             "gnt-network": set(NETWORK_FIELDS)}
    examples = 0
    for name in ALL_PAGES:
        for line in page(name).splitlines():
            words = line.split()
            if len(words) < 2 or words[0] not in known or words[1] != "list" or "-F" not in words:
                continue
            argv = shlex.split(line)
            text = " ".join(argv[argv.index("-F") + 1:])
            compiled = qfilter.compile_filter(qfilter.parse_filter(text), known[argv[0]])
            assert callable(compiled), line
            examples += 1
    assert examples >= 10


# --- every page -----------------------------------------------------------------

def page_sections() -> dict[str, int]:
    """Manual section of every page, from its title line."""
    found = {}
    for name in ALL_PAGES:
        match = TITLE.match(page(name).splitlines()[0])
        if match:
            found[match.group(1)] = int(match.group(2))
    return found


def test_every_required_page_exists_in_its_manual_section():
    assert {name: page_sections().get(name) for name in REQUIRED_PAGES} == REQUIRED_PAGES


@pytest.mark.parametrize("name", ALL_PAGES)
def test_page_has_a_title_and_name_and_synopsis_sections(name):
    text = page(name)
    heads = headings(text)
    assert heads and heads[0][0] == 0 and heads[0][2] == "=", "the page must start with its title"
    match = TITLE.match(heads[0][1])
    assert match and match.group(1) == name, f"title {heads[0][1]!r} is not '{name}(N) genet'"
    titles = [t for _, t, _ in heads]
    assert titles[1:3] == ["NAME", "SYNOPSIS"]
    assert section(text, "NAME").strip().startswith(f"{name} - ")
    synopsis = section(text, "SYNOPSIS")
    assert synopsis.strip(), "empty SYNOPSIS"
    if match.group(2) != "7":   # a command's synopsis names the command
        assert f"**{name}**" in synopsis or f"**tools/{name}**" in synopsis
    for required in ("DESCRIPTION", "SEE ALSO"):
        assert required in titles


@pytest.mark.parametrize("name", ALL_PAGES)
def test_page_refers_only_to_existing_pages(name):
    refs = re.findall(r"\*\*([\w-]+)\*\*\\\((\d)\)", page(name))
    assert refs, "a page refers to at least one other page"
    sections = page_sections()
    assert [f"{ref}({sec})" for ref, sec in refs if sections.get(ref) != int(sec)] == []


@pytest.mark.parametrize("name", ALL_PAGES)
def test_page_builds_with_rst2man_into_a_man_page_with_its_name_and_section(name):
    """The build (tools/genet_build.py) stops at any docutils warning; the troff page's header
    names the page and its section, and its NAME line is the page's."""
    import genet_build
    troff = genet_build.render_man(MAN / f"{name}.rst", "0.1.0")
    manual = TITLE.match(page(name).splitlines()[0]).group(2)
    assert f'\n.TH "{name}" "{manual}" "" "0.1.0" "genet"\n' in troff
    summary = section(page(name), "NAME").strip().split(" - ", 1)[1]
    assert f"\n.SH Name\n{name} \\- {summary}\n" in troff


def test_genet_page_explains_the_common_options_and_every_alias():
    common = section(page("genet"), "COMMON OPTIONS")
    assert [o for o in COMMON_OPTIONS if not mentions(common, o)] == []
    aliases = section(page("genet"), "ALIASES")
    assert [f"{alias} ({name})" for name, names in cli_base.ALIASES.items() for alias in names
            if not (mentions(aliases, alias) and mentions(aliases, name))] == []
