"""Bash completion for genet's commands, written from their own argparse parsers.

As Ganeti's autotools/build-bash-completion does, the build writes one static bash script per
command (setup.py's build_docs step), so a TAB runs no Python: the script holds every
subcommand, option and fixed choice of the command as bash tables, and reads the names of
nodes, instances, node groups and networks from the ssconf files of the node it runs on, the
OS names from the OS search path. Only job IDs cost a process (a read of the job queue). Where
there is no cluster, names complete to nothing.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import shlex
from pathlib import Path
from typing import Iterable

from genet import osinterface, paths
from genet.ptypes import Bool, OneOf

# the kind of name a value is, by the metavar the parsers give it
NAME_KINDS = {
    "NODE": "nodes", "PNODE": "nodes", "TARGET_NODE": "nodes", "REMOTE_NODE": "nodes",
    "PRIMARY[:SECONDARY]": "nodes", "NODE,...": "nodes", "INSTANCE": "instances", "GROUP": "groups",
    "NETWORK_NAME": "networks", "OS_TYPE": "oses", "OS": "oses", "JOB_ID": "jobs",
}
# where each kind of name is read from: an ssconf file (Ganeti's name for it) and the field of
# each line that holds the name (node_list and instance_list start with it; nodegroups and
# networks are "UUID NAME" lines)
SSCONF_NAMES = {"nodes": ("node_list", 1), "instances": ("instance_list", 1),
                "groups": ("nodegroups", 2), "networks": ("networks", 2)}
# the job queue's unarchived jobs (genet.queue_store keeps them in this table)
JOBS_QUERY = "SELECT id FROM jobs WHERE archived=0 ORDER BY id"
YES_NO = "yes,no"           # what a yes/no option (ptypes.Bool) is offered

HELPERS = r'''
_genet_field() {
    # field $2 of each line of file $1 (an ssconf list), one a line
    local -a fields
    [[ -r $1 ]] || return 0
    while read -ra fields; do
        printf '%s\n' "${fields[$2 - 1]}"
    done < "$1"
}

_genet_dirs() {
    # the names of the directories in $1
    local dir
    for dir in "$1"/*/; do
        [[ -d $dir ]] || continue
        dir=${dir%/}
        printf '%s\n' "${dir##*/}"
    done
}

_genet_reply() {
    # offer what $1 describes (@KIND: names of that kind; else choices separated by commas) for
    # the argument typed so far, $2; an argument made of parts (--opt=VALUE, PRIMARY:SECONDARY)
    # completes its last part
    local typed=${2##*[=:]} keep=${2%"${2##*[=:]}"} words
    # readline replaces only the text after the last word-break character: keep the rest
    [[ $COMP_WORDBREAKS == *=* ]] && keep=${keep##*=}
    [[ $COMP_WORDBREAKS == *:* ]] && keep=${keep##*:}
    case $1 in
        @*) words=$(_genet_names "${1#@}") ;;
        *) words=${1//,/ } ;;
    esac
    COMPREPLY=($(compgen -P "$keep" -W "$words" -- "$typed"))
}

_genet_complete() {
    local -a words=()
    local key=${COMP_WORDS[0]##*/} cur w i n npos=0 rest= isval= spec= arg count
    # bash splits "--opt=value" and "a:b" at = and :; join the parts back into arguments
    for ((i = 1; i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((i > 1)) && [[ $w =~ ^[=:]+$ || ${COMP_WORDS[i - 1]} =~ ^[=:]+$ ]]; then
            words[-1]+=$w
        else
            words+=("$w")
        fi
    done
    cur=${words[-1]}
    n=$((${#words[@]} - 1))
    COMPREPLY=()
    for ((i = 0; i < n; i++)); do
        w=${words[i]}
        if [[ -z $rest && $w == -- ]]; then
            rest=1
        elif [[ -z $rest && $w == -?* ]]; then
            # an option that takes a value takes the next argument unless it carries it
            if [[ $w != *=* && ($w == --* || ${#w} -eq 2) && -n ${_genet_vals["$key $w"]+set} ]]; then
                spec=${_genet_vals["$key $w"]}
                ((++i == n)) && isval=1
            fi
        elif ((npos == 0)) && [[ -n ${_genet_cmds[$key]+set} ]]; then
            key+=" $w"
        else
            ((++npos))
        fi
    done
    if [[ -n $isval ]]; then
        _genet_reply "$spec" "$cur"
    elif [[ -z $rest && $cur == --*=* ]]; then
        [[ -n ${_genet_vals["$key ${cur%%=*}"]+set} ]] && _genet_reply "${_genet_vals["$key ${cur%%=*}"]}" "$cur"
    elif [[ -z $rest && $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${_genet_opts[$key]}" -- "$cur"))
    elif [[ -n ${_genet_cmds[$key]+set} ]]; then
        ((npos == 0)) && COMPREPLY=($(compgen -W "${_genet_cmds[$key]}" -- "$cur"))
    else
        # the positional argument the current word is: COUNT:WHAT, COUNT "+" for all the rest
        for arg in ${_genet_args[$key]}; do
            count=${arg%%:*}
            if [[ $count == + ]] || ((npos < count)); then
                _genet_reply "${arg#*:}" "$cur"
                return
            fi
            ((npos -= count))
        done
    fi
}
'''


def parser_of(prog: str, target: str) -> argparse.ArgumentParser:
    """The parser the command ``prog`` (console script ``target``, "module:function") reads its
    arguments with: a gnt-* module's ``build`` fills one as base.run does, a daemon's module
    has ``build_parser``; a module with neither reads no arguments (genet-prepare-node-join)."""
    module = importlib.import_module(target.split(":")[0].strip())
    if hasattr(module, "build"):
        parser = argparse.ArgumentParser(prog=prog)
        module.build(parser)
        return parser
    if hasattr(module, "build_parser"):
        return module.build_parser()
    return argparse.ArgumentParser(prog=prog, add_help=False)


def _value_type(action: argparse.Action):
    """The genet parameter type (genet.ptypes) an option's value is parsed with, if any: the
    options derived from opcodes parse through a closure over it (base.argument_type)."""
    if not inspect.isfunction(action.type) or action.type.__closure__ is None:
        return None
    return inspect.getclosurevars(action.type).nonlocals.get("ptype")


def completes_to(action: argparse.Action) -> str:
    """What a value of ``action`` completes to: "@KIND" (names), choices joined with commas, or
    "" (nothing: free text)."""
    if action.choices is not None:
        choices = [str(c) for c in action.choices]
    elif isinstance(action.metavar, str) and action.metavar in NAME_KINDS:
        return "@" + NAME_KINDS[action.metavar]
    elif isinstance(ptype := _value_type(action), OneOf):
        choices = list(ptype.choices)
    elif isinstance(ptype, Bool):
        return YES_NO
    else:
        return ""
    bad = [c for c in choices if not c or any(ch in c for ch in " ,=:*?[")]
    if bad:
        raise ValueError(f"{action.dest}: choices {bad} cannot be offered by the completion")
    return ",".join(choices)


def _count(action: argparse.Action) -> str:
    if action.nargs in (None, "?"):
        return "1"
    if isinstance(action.nargs, int):
        return str(action.nargs)
    return "+"


def tables(prog: str, parser: argparse.ArgumentParser) -> dict[str, dict[str, str]]:
    """The bash tables of one command: for each (sub)command ("gnt-node", "gnt-node add") its
    subcommands (cmds), options (opts), positional arguments (args), and for each option that
    takes a value ("gnt-node add -g") what that value completes to (vals)."""
    found: dict[str, dict[str, str]] = {"cmds": {}, "opts": {}, "vals": {}, "args": {}}

    def walk(key: str, parser: argparse.ArgumentParser) -> None:
        options, positionals, subcommands = [], [], {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                subcommands.update(action.choices)
            elif action.option_strings:
                options += action.option_strings
                if action.nargs != 0:
                    for option in action.option_strings:
                        found["vals"][f"{key} {option}"] = completes_to(action)
            else:
                positionals.append(f"{_count(action)}:{completes_to(action)}")
        found["opts"][key] = " ".join(options)
        if subcommands:
            found["cmds"][key] = " ".join(subcommands)
        else:
            found["args"][key] = " ".join(positionals)
        for name, sub in subcommands.items():
            walk(f"{key} {name}", sub)

    walk(prog, parser)
    return found


def _names_function(bundled_os: str | None) -> str:
    """_genet_names KIND: the names the node knows, from paths below $GENET_ROOT as genet.paths
    and genet.osinterface define them."""
    with paths.acting_as(Path("/"), ""):
        below_root = {kind: (str(paths.ssconf_file(key).relative_to("/")), field)
                      for kind, (key, field) in SSCONF_NAMES.items()}
        queue = str(paths.queue_db().relative_to("/"))
        from_env = {Path(p) for p in os.environ.get(osinterface.SEARCH_PATH_ENV, "").split(":") if p}
        os_dirs = [str(d.relative_to("/")) for d in osinterface.search_path()
                   if d not in from_env and d != osinterface.bundled_dir()]
    lines = ["_genet_names() {", "    local root=${GENET_ROOT:-/} dir", "    root=${root%/}", "    case $1 in"]
    for kind, (path, field) in below_root.items():
        lines.append(f'        {kind}) _genet_field "$root/{path}" {field} ;;')
    lines.append("        oses)")
    lines.append(f"            local IFS=:; for dir in ${osinterface.SEARCH_PATH_ENV}; do _genet_dirs \"$dir\"; done")
    lines += [f'            _genet_dirs "$root/{d}"' for d in os_dirs]
    if bundled_os:   # the definitions installed with genet, found from where this file is
        lines.append(f'            _genet_dirs "${{BASH_SOURCE[0]%/*}}/{bundled_os}"')
    lines.append("            ;;")
    lines.append(f"        jobs) [[ -r $root/{queue} ]] && python3 -I -S -c '{_JOBS_SCRIPT}' \"$root/{queue}\" 2>/dev/null ;;")
    lines += ["    esac", "}"]
    return "\n".join(lines)


# (in single quotes in the script: no single quote inside)
_JOBS_SCRIPT = ('import sqlite3, sys; db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True); '
                f'print(*(row[0] for row in db.execute("{JOBS_QUERY}")), sep="\\n")')


def script(prog: str, parser: argparse.ArgumentParser, bundled_os: str | None = None) -> str:
    """The bash completion script of one command. ``bundled_os``: where the OS definitions
    installed with genet are, relative to the directory the script is installed in."""
    out = [f"# bash completion for {prog}: written from its argument parser by genet.cli.completion",
           "# when genet was built; do not edit.", HELPERS.strip(), _names_function(bundled_os), "",
           "declare -gA _genet_cmds _genet_opts _genet_vals _genet_args"]
    for table, entries in tables(prog, parser).items():
        out += [f"_genet_{table}[{shlex.quote(key)}]={shlex.quote(value)}" for key, value in entries.items()]
    out.append(f"complete -F _genet_complete {prog}")
    return "\n".join(out) + "\n"


def write(commands: Iterable[str], folder: Path, bundled_os: str | None = None) -> list[Path]:
    """Write the script of every command (console script specs, "name = module:function") into
    ``folder``, each named after its command as bash-completion looks it up."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in commands:
        prog, target = (part.strip() for part in spec.split("=", 1))
        path = folder / prog
        path.write_text(script(prog, parser_of(prog, target), bundled_os))
        written.append(path)
    return written
