"""Ganeti's instance policy options (gnt-cluster init/modify, gnt-group add/modify): each sets
one part of the opcode's ``ipolicy`` (genet.opcodes.IPOLICY), as Ganeti's do.

``--ipolicy-bounds-specs min:memory-size=128,cpu-count=1/max:memory-size=4G,cpu-count=8`` (more
min/max pairs after ``//``), ``--ipolicy-std-specs memory-size=512,...``, the ratios, the allowed
disk templates, and (init) the older ``--specs-mem-size min=128,max=4G,std=512`` per spec.
"""
from __future__ import annotations

import argparse

from genet import opcodes, params
from genet.opcodes.group import ISPECS as SPECS
# Ganeti's older per-spec options (gnt-cluster init): option -> spec
OLD_SPEC_OPTIONS = {"--specs-cpu-count": "cpu-count", "--specs-disk-count": "disk-count",
                    "--specs-disk-size": "disk-size", "--specs-mem-size": "memory-size",
                    "--specs-nic-count": "nic-count"}


def specs(text: str, allowed: dict = SPECS) -> dict:
    """``name=value,...`` of specs, each value of its type."""
    values = {}
    for part in filter(None, text.split(",")):
        name, equals, value = part.partition("=")
        if not equals or name not in allowed:
            raise ValueError(f"invalid spec {part!r}: use NAME=VALUE with NAME one of {', '.join(allowed)}")
        values[name] = allowed[name].parse(value)
    return values


def bounds(text: str) -> list[dict]:
    """``min:SPECS/max:SPECS`` pairs separated by ``//``."""
    pairs = []
    for pair in text.split("//"):
        sides = {}
        for side in pair.split("/"):
            bound, colon, values = side.partition(":")
            if not colon or bound not in ("min", "max") or bound in sides:
                raise ValueError(f"invalid bounds {pair!r}: use min:NAME=VALUE,.../max:NAME=VALUE,...")
            sides[bound] = specs(values)
        if set(sides) != {"min", "max"}:
            raise ValueError(f"invalid bounds {pair!r}: give both min: and max:")
        pairs.append(sides)
    return pairs


def _typed(parse, option: str):
    """``parse`` as an argparse type; ``default`` passes as it is (the group inherits again)."""
    def convert(text: str):
        if text == params.RESET:
            return text
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{option}: {err}") from None
    return convert


def _templates(text: str) -> list[str]:
    return opcodes.IPOLICY.fields["disk-templates"].check([part for part in text.split(",") if part])


# option -> (key of the ipolicy, parser, metavar, help)
OPTIONS = {
    "--ipolicy-bounds-specs": ("minmax", bounds, "min:SPEC=V,.../max:SPEC=V,...[//...]",
                               "Minimum and maximum specs of instances (pairs separated by //)"),
    "--ipolicy-std-specs": ("std", specs, "SPEC=VALUE,...", "Standard specs of instances"),
    "--ipolicy-disk-templates": ("disk-templates", _templates, "TEMPLATE,...", "Disk templates allowed"),
    "--ipolicy-vcpu-ratio": ("vcpu-ratio", opcodes.IPOLICY.fields["vcpu-ratio"].parse, "RATIO",
                             "Maximum ratio of virtual to physical CPUs"),
    "--ipolicy-spindle-ratio": ("spindle-ratio", opcodes.IPOLICY.fields["spindle-ratio"].parse, "RATIO",
                                "Maximum ratio of instances to spindles"),
}


def add_options(parser: argparse.ArgumentParser, old_specs: bool = False) -> None:
    """The --ipolicy-* options (and, with ``old_specs``, Ganeti's --specs-* of init)."""
    for option, (key, parse, metavar, helptext) in OPTIONS.items():
        parser.add_argument(option, dest=_dest(option), type=_typed(parse, option), metavar=metavar,
                            default=None, help=helptext)
    if old_specs:
        for option, spec in OLD_SPEC_OPTIONS.items():
            parser.add_argument(option, dest=_dest(option), metavar="min=V,max=V,std=V", default=None,
                                type=_typed(lambda text, s=spec: specs(text, dict.fromkeys(("min", "max", "std"),
                                                                                       SPECS[s])), option),
                                help=f"Minimum, maximum and standard {spec} of instances")


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def from_args(ns: argparse.Namespace) -> dict:
    """The opcode's ``ipolicy`` the options give (``{}`` for none)."""
    policy = {key: getattr(ns, _dest(option)) for option, (key, *_rest) in OPTIONS.items()
              if getattr(ns, _dest(option), None) is not None}
    old = {spec: getattr(ns, _dest(option)) for option, spec in OLD_SPEC_OPTIONS.items()
           if getattr(ns, _dest(option), None)}
    if old:
        pair = {"min": {}, "max": {}}
        for spec, values in old.items():
            for bound in ("min", "max"):
                if bound in values:
                    pair[bound][spec] = values[bound]
            if "std" in values:
                policy.setdefault("std", {})[spec] = values["std"]
        if pair["min"] or pair["max"]:
            policy.setdefault("minmax", [pair])
    return {"ipolicy": policy} if policy else {}


def create_command(command: str, name: str, policy: dict, group: bool) -> str:
    """Ganeti's show-ispecs-cmd line: ``command`` with the spec options that make ``policy``
    (a group's without the standard specs, which only the cluster sets), then ``name``."""
    def listed(values: dict) -> str:
        return ",".join(f"{key}={value}" for key, value in sorted(values.items()))
    line = command
    if not group and policy.get("std"):
        line += f" --ipolicy-std-specs {listed(policy['std'])}"
    pairs = [f"min:{listed(pair['min'])}/max:{listed(pair['max'])}" for pair in policy.get("minmax", [])
             if pair.get("min") and pair.get("max")]
    if pairs:
        line += f" --ipolicy-bounds-specs {'//'.join(pairs)}"
    return f"{line} {name}"
