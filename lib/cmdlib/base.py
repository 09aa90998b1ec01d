"""The logical unit: how one opcode is executed.

Phases: ``expand_names`` (locks only) → ``declare_locks`` per level → ``check_prereq``
(may refuse, changes nothing) → ``exec`` (acts). A refusal therefore leaves the
cluster untouched.
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
