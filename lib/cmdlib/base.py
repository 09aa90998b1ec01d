"""The logical unit: how one opcode is executed.

Phases: ``expand_names`` (locks only) → ``declare_locks`` per level → ``check_prereq``
(may refuse, changes nothing) → the pre hooks (a site script may refuse too) → ``exec``
(acts) → the post hooks. A refusal therefore leaves the cluster untouched.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from genet import errors
from genet.clock import SYSTEM, Clock
from genet.locking import ALL_SET, Level

if TYPE_CHECKING:
    from genet.masterd import MasterContext
    from genet.opcodes import OpCode
    from genet.rpc import NodeRpc

Feedback = Callable[[str], None]
_LUS: dict[str, type["LogicalUnit"]] = {}


def lu_for(op_id: str) -> type["LogicalUnit"]:
    try:
        return _LUS[op_id]
    except KeyError:
        raise errors.OpCodeUnknown(f"no logical unit for opcode {op_id}") from None


class LogicalUnit:
    """Base class. ``OPCODE`` names the opcode class the LU executes."""
    OPCODE: type["OpCode"]
    REQ_BGL = True           # exclusive Big Ganeti Lock: nothing else runs meanwhile
    HPATH: str | None = None     # Ganeti's hooks directory name (genet.hooks); None: no hooks
    HTYPE: str | None = None     # the hooks' object type: CLUSTER, NODE, GROUP, INSTANCE, NETWORK

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "OPCODE" in cls.__dict__:
            _LUS[cls.OPCODE.OP_ID] = cls

    def __init__(self, ctx: "MasterContext", op: "OpCode", feedback: Feedback):
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.rpc: "NodeRpc" = getattr(ctx, "rpc", None)     # typed node RPC (genet.rpc.NodeRpc)
        self.clock: Clock = getattr(ctx, "clock", SYSTEM)   # polls wait on it, so tests can advance it
        self.op = op
        self.feedback = feedback
        self.owner: Any = None           # the lock owner (job id), set by the processor
        self.needed_locks: dict[Level, Any] = {}
        self.share_locks: dict[Level, bool] = {}

    def expand_names(self) -> None:
        """Fill ``needed_locks``; must not look at anything it does not lock."""

    def declare_locks(self, level: Level) -> None:
        """Refine ``needed_locks`` for ``level`` once the levels above are held."""

    def check_prereq(self) -> None:
        """Refuse with OpPrereqError if the operation cannot go ahead."""

    def exec(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement exec")

    def hooks_env(self) -> dict[str, Any]:
        """The hooks' variables without prefix (Ganeti's BuildHooksEnv); asked after check_prereq
        and again after exec (the POST_ values), so it reads what check_prereq kept."""
        return {}

    def hooks_nodes(self) -> tuple[list[str], list[str]]:
        """The nodes the pre and post hooks run on."""
        return [], []

    def hooks_post_nodes(self, nodes: list[str]) -> list[str]:
        """The post hooks' nodes once exec ran (node add adds the new node)."""
        return nodes

    def hooks_result(self, results: dict[str, Any], result: Any) -> Any:
        """The opcode's result given the post hooks' ``results`` (verify reports them)."""
        return result

    def master_node(self) -> str:
        return self.cfg.read(lambda d: d.cluster["master_node"])

    def on_master(self) -> tuple[list[str], list[str]]:
        """The hooks nodes of the opcodes whose hooks Ganeti runs on the master alone."""
        master = self.master_node()
        return [master], [master]

    def cleanup(self, failed: bool) -> None:
        """Runs after the opcode, before its locks are released (e.g. drop a new lock on failure)."""

    # helpers shared by LUs

    def node(self, name: str) -> dict:
        node = self.cfg.read(lambda d: d.nodes.get(name))
        if node is None:
            raise errors.OpPrereqError(f"node {name!r} is not in the cluster", errors.ECode.NOENT)
        return node

    def lock_all_nodes(self, shared: bool = True) -> None:
        self.needed_locks[Level.NODE] = ALL_SET
        self.share_locks[Level.NODE] = shared
