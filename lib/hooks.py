"""Ganeti's hooks, the master's side: which site scripts run where, with what, and what a failure means.

A logical unit with hooks names Ganeti's hooks directory (``HPATH``: instance-add, node-modify, ...)
and object type (``HTYPE``), its environment (``hooks_env``, keys without prefix) and the nodes to
run on (``hooks_nodes``: pre, post). The processor runs the pre phase once the prerequisites
hold: a failing pre script aborts the opcode with its output (HooksAbort) and nothing is done; the
post phase runs after a successful exec with the environment recomputed under ``POST_``, and its
failures are reported, never fatal (``hooks_result`` lets verify count them). After any opcode
that changed the config, ``config-update`` runs on the master. Every variable is passed under
Ganeti's ``GANETI_`` prefix, so Ganeti sites keep their scripts, and under ``GENET_``. A node that
cannot be reached or is offline does not veto (Ganeti's rule: only a script's failure does).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from genet import config, errors, paths
from genet.hooks_runner import HKR_FAIL, has_scripts, run_hooks

if TYPE_CHECKING:
    from genet.cmdlib.base import LogicalUnit

log = logging.getLogger("genet.hooks")
HOOKS_VERSION = 2
HOOKS_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"    # the scripts' PATH, Ganeti's
PRE, POST = "pre", "post"
CONFIG_UPDATE = "config-update"
PREFIXES = ("GANETI_", "GENET_")
T = TypeVar("T")


def prefixed(env: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``env`` under both prefixes, values as Ganeti's strings (True, None, 3)."""
    return {f"{brand}{prefix}{key}": str(value) for brand in PREFIXES for key, value in env.items()}


class HooksMaster:
    """The hooks of one opcode's run (Ganeti's HooksMaster)."""

    def __init__(self, lu: "LogicalUnit"):
        self.lu = lu
        name, self.master = lu.cfg.read(lambda d: (d.cluster["cluster_name"], d.cluster["master_node"]))
        self.common = {"HOOKS_VERSION": HOOKS_VERSION, "OP_CODE": lu.op.OP_ID, "CLUSTER": name, "MASTER": self.master}
        if lu.HTYPE:
            self.common["OBJECT_TYPE"] = lu.HTYPE
        self.pre_nodes: list[str] = []
        self.post_nodes: list[str] = []
        self.env: dict[str, Any] = {}
        if lu.HPATH:
            self.pre_nodes, self.post_nodes = lu.hooks_nodes()
            self.env = lu.hooks_env()

    def run(self, phase: str) -> dict[str, Any]:
        """Run ``phase`` of the LU's hooks; the nodes' results (the failed calls too)."""
        if not self.lu.HPATH:
            return {}
        if phase == PRE:
            return self._run(self.lu.HPATH, PRE, self.pre_nodes, prefixed(self.env))
        try:
            after = prefixed(self.lu.hooks_env(), "POST_")
        except Exception as err:      # the opcode is done: a bug here must not fail it, nor go unseen
            log.exception("%s: the post hooks' environment", self.lu.op.OP_ID)
            self.lu.feedback(f" - WARNING: the post hooks get no POST_ variables: {type(err).__name__}: {err}")
            after = {}
        return self._run(self.lu.HPATH, POST, self.lu.hooks_post_nodes(self.post_nodes),
                         {**prefixed(self.env), **after})

    def config_update(self) -> None:
        """Ganeti's config-update hook: on the master, after an opcode changed the config."""
        self._run(CONFIG_UPDATE, POST, [self.master], prefixed(self.env))

    def _run(self, hpath: str, phase: str, nodes: list[str], env: dict[str, str]) -> dict[str, Any]:
        targets = self._reachable(nodes)
        if self.master in targets and not has_scripts(hpath, phase):     # masterd runs on the master
            del targets[self.master]
        if not targets:
            return {}
        env = {"PATH": HOOKS_PATH, **prefixed({**self.common, "HOOKS_PHASE": phase, "HOOKS_PATH": hpath}), **env}
        results = self.lu.rpc.hooks_runner.on(targets, hpath, phase, env)
        vetoes = []
        for node, res in sorted(results.items()):
            if res.failed:
                self.lu.feedback(f" - WARNING: Communication failure to node {node}: {res.fail_msg}")
                continue
            for script, status, output in res.payload:
                if status != HKR_FAIL:
                    continue
                if phase == PRE:
                    vetoes.append([node, script, output])
                else:
                    self.lu.feedback(f" - WARNING: On {node} script {script} failed, output:"
                                     f" {output or '(no output)'}")
        if vetoes:
            raise errors.HooksAbort(vetoes)
        return results

    def _reachable(self, nodes: list[str]) -> dict[str, str]:
        """The online nodes among ``nodes`` and their addresses (duplicates and unknown names
        dropped: an LU may name the master twice, or a node that left)."""
        found = self.lu.cfg.read(lambda d: {n: d.nodes[n]["primary_ip"] for n in nodes
                                            if n in d.nodes and not d.nodes[n]["offline"]})
        return {n: found[n] for n in dict.fromkeys(nodes) if n in found}


def run_locally(hpath: str, op_code: str, env: dict[str, Any], action: Callable[[], T]) -> T:
    """Ganeti's local hooks, for what a node does outside any opcode (the master IP's turnup and
    turndown): this node's pre scripts (a failure refuses ``action``), ``action``, its post scripts."""
    common = {"HOOKS_VERSION": HOOKS_VERSION, "OP_CODE": op_code, "HOOKS_PATH": hpath,
              "CLUSTER": config.ssconf_value("cluster_name"), "MASTER": config.ssconf_value("master_node")}
    def phase(name: str, extra: dict[str, str]) -> list[list]:
        return run_hooks(hpath, name, {"PATH": HOOKS_PATH, **prefixed({**common, "HOOKS_PHASE": name}),
                                       **prefixed(env), **extra})
    vetoes = [[paths.node_name(), script, output] for script, status, output in phase(PRE, {}) if status == HKR_FAIL]
    if vetoes:
        raise errors.HooksAbort(vetoes)
    result = action()
    phase(POST, prefixed(env, "POST_"))
    return result
