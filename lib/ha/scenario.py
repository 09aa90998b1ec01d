"""HA scenario files: the world to build and the events to play, for genet.ha.sim.

One statement per line; ``#`` starts a comment (the first comment lines say what the scenario
shows). The first node named is the master at the start::

    timing node_dead=10 fence_retry=5        # any genet.ha.timing.Timing field
    node node1                               # a master candidate with an OOB program
    node node4 candidate=no watchdog=yes oob=no memory=2048 vm=no drained=no maintenance=no
    instance web node2:node3 mirror memory=512 ha=yes priority=5
    instance db node2 sharedfile memory=1024 ha=yes
    auto-failover no
    clients every=1                          # a client submits a job every second
    at 10 power-off node1
    end 60

Events: power-off N, power-on N, isolate N... (each alone), split N... (together, apart from
the rest), heal [N...], fence-fails N K (its next K power-offs fail), mirror-down I, mirror-up I,
auto-failover yes|no, master-failover N (the admin runs it on N).

``python -m genet.ha.scenario FILE`` prints a scenario's log.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from genet.ha import sim
from genet.ha.timing import Timing

_BOOL = {"yes": True, "no": False, "true": True, "false": False}


class ScenarioError(ValueError):
    pass


def _options(words: list[str], allowed: dict[str, type], line: int) -> dict:
    opts = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in allowed:
            raise ScenarioError(f"line {line}: unknown option {word!r} (known: {', '.join(sorted(allowed))})")
        kind = allowed[key]
        try:
            opts[key] = _BOOL[value] if kind is bool else kind(value)
        except (KeyError, ValueError):
            raise ScenarioError(f"line {line}: {key}={value!r} is not a {kind.__name__}") from None
    return opts


_NODE = {"candidate": bool, "memory": int, "oob": bool, "watchdog": bool, "vm": bool, "drained": bool,
         "maintenance": bool}
_INSTANCE = {"memory": int, "ha": bool, "priority": int}


def run(text: str, echo=None) -> list[str]:
    """Play a scenario; its log lines."""
    timing, setup, events, end = Timing(), [], [], None
    for number, raw in enumerate(text.splitlines(), 1):
        words = shlex.split(raw, comments=True)
        if not words:
            continue
        verb, args = words[0], words[1:]
        if verb == "timing":
            timing = Timing(**{**timing.__dict__, **_options(args, {f: float for f in Timing.fields()}, number)})
        elif verb in ("node", "instance", "auto-failover"):
            setup.append((number, verb, args))
        elif verb == "clients":
            setup.append((number, verb, args))
        elif verb == "at":
            if len(args) < 2:
                raise ScenarioError(f"line {number}: 'at' needs a time and an event")
            events.append((float(args[0]), number, args[1], args[2:]))
        elif verb == "end":
            end = float(args[0])
        else:
            raise ScenarioError(f"line {number}: unknown statement {verb!r}")
    if end is None:
        raise ScenarioError("the scenario has no 'end TIME'")
    world = sim.World(timing, echo)
    master, every = None, None
    for number, verb, args in setup:
        if verb == "node":
            opts = _options(args[1:], _NODE, number)
            if "vm" in opts:
                opts["vm_capable"] = opts.pop("vm")
            world.add_node(sim.Node(name=args[0], **opts))
            master = master or args[0]
        elif verb == "instance":
            name, where, template = args[:3]
            primary, _, secondary = where.partition(":")
            opts = _options(args[3:], _INSTANCE, number)
            world.add_instance(sim.Instance(name=name, template=template, memory=opts.get("memory", 512),
                                            ha=opts.get("ha", False), priority=opts.get("priority", 0)),
                               primary, secondary or None)
        elif verb == "auto-failover":
            world.auto_failover = _BOOL[args[0]]
        elif verb == "clients":
            every = _options(args, {"every": float}, number)["every"]
    if master is None:
        raise ScenarioError("the scenario names no node")
    world.begin(master)
    events.sort(key=lambda e: (e[0], e[1]))
    next_job = every
    while world.clock.monotonic() <= end:
        now = world.clock.monotonic()
        while events and events[0][0] <= now:
            _, number, verb, args = events.pop(0)
            _event(world, number, verb, args)
        if every is not None and now >= next_job:
            world.submit()
            next_job = now + every
        world.step()
        world.clock.advance(sim.STEP)
    world.final()
    return world.lines


def _event(world: sim.World, number: int, verb: str, args: list[str]) -> None:
    nodes = world.nodes
    for name in args if verb in ("power-off", "power-on", "isolate", "split", "heal", "fence-fails",
                                 "master-failover") else []:
        if name not in nodes and not name.isdigit():
            raise ScenarioError(f"line {number}: no node {name!r}")
    if verb == "power-off":
        world.power_off(args[0], "loses power")
    elif verb == "power-on":
        world.power_on(args[0])
    elif verb in ("isolate", "split"):
        for index, name in enumerate(args):
            nodes[name].group = number * 100 + (0 if verb == "split" else index)
        world.log(f"world: {' '.join(args)} cut off" if verb == "isolate" else
                  f"world: network split: {', '.join(args)} apart from the rest")
    elif verb == "heal":
        for name in args or nodes:
            nodes[name].group = 0
        world.log(f"world: network healed{': ' + ', '.join(args) if args else ''}")
    elif verb == "fence-fails":
        nodes[args[0]].fence_failures = int(args[1])
    elif verb in ("mirror-down", "mirror-up"):
        world.instances[args[0]].broken = verb == "mirror-down"
        world.log(f"world: {args[0]}'s mirror link {'breaks' if verb == 'mirror-down' else 'is repaired'}")
    elif verb == "auto-failover":
        world.auto_failover = _BOOL[args[0]]
        world.log(f"admin: gnt-cluster modify --auto-master-failover {args[0]}")
    elif verb == "master-failover":
        world.log(f"admin: gnt-cluster master-failover on {args[0]}")
        why_not = nodes[args[0]].elector.hand_over()
        if why_not is not None:
            world.log(f"admin: master-failover refused: {why_not}")
    else:
        raise ScenarioError(f"line {number}: unknown event {verb!r}")


def main(argv: list[str]) -> int:
    for path in argv:
        for line in run(Path(path).read_text()):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
