"""One error tree for the whole of genet.

Errors cross luxi and RPC as ``[class name, args]`` and are rebuilt on the other
side by :func:`from_wire`, so a CLI sees the same class a logical unit raised.
Exit codes and ecodes keep Ganeti's values so scripts written for Ganeti work.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 1
    CONFIG_CORRUPT = 2      # the config file could not be read or parsed
    NOT_CLUSTER = 5         # this node is not part of a cluster
    NOT_MASTER = 11         # the command must run on the master
    NODE_SETUP = 12         # node setup (certificates, daemons) failed
    CONFIRMATION = 13       # the command needs --force or --yes-do-it
    UNKNOWN_FIELD = 14      # an -o field does not exist


class ECode(str, enum.Enum):
    RESOLVER = "resolver_error"
    NORES = "insufficient_resources"
    TEMP_NORES = "temp_insufficient_resources"
    WRONG_STATE = "wrong_state"
    INVAL = "wrong_input"
    EXISTS = "already_exists"
    NOENT = "unknown_entity"
    NOTUNIQUE = "resource_not_unique"
    FAULT = "internal_error"
    ENVIRON = "environment_error"


class GenericError(Exception):
    """Root of every genet error."""


class ProgrammerError(GenericError):
    """A bug: an internal contract was broken."""


class ConfigurationError(GenericError):
    """The cluster configuration is inconsistent or could not be read."""


class OpPrereqError(GenericError):
    """Refused before anything changed; args are (message, ecode)."""

    def __init__(self, msg: str, ecode: ECode | str = ECode.INVAL):
        super().__init__(msg, ECode(ecode).value)

    @property
    def ecode(self) -> str:
        return self.args[1]


class OpExecError(GenericError):
    """Failed while acting on the cluster."""


class OpCodeUnknown(GenericError):
    """The job holds an opcode this master does not know."""


class JobLost(GenericError):
    """The job vanished from the queue."""


class JobQueueDrainError(GenericError):
    """The queue is drained: no new jobs are accepted."""


class JobQueueFull(GenericError):
    """The queue holds too many unfinished jobs."""


class LuxiError(GenericError):
    """The master daemon could not be reached or answered garbage."""


class RpcError(GenericError):
    """A node RPC failed (node unreachable, TLS refused, remote error)."""


class QuorumError(GenericError):
    """Too few master candidates acknowledged a replicated write."""


class HooksAbort(GenericError):
    """A pre hook script failed: the opcode does not run. args[0]: [node, script, output] each."""


class HooksFailure(GenericError):
    """The hooks could not be run at all."""


class ParameterError(GenericError):
    """A query asked for an unknown field."""


class TagError(GenericError):
    """A tag is invalid or a tag limit was reached."""


class CertificateError(GenericError):
    """A certificate is missing, invalid or expired."""


class CommandError(GenericError):
    """An external command failed."""


class ConfirmationNeeded(GenericError):
    """The user must confirm with --yes-do-it / --force."""


class NodeCutOffError(OpPrereqError):
    """A node that lost the master's heartbeat serves no instance or disk request until the master
    has stopped the instances the config places elsewhere (genet.noded)."""


class NotMasterError(GenericError):
    """This node is not the master."""


class EpochError(NotMasterError):
    """A write from a master of an older epoch was refused: that master was deposed.

    args: (message, the current master's name)."""


class NotClusterError(GenericError):
    """This node is not part of a cluster."""


# --- the branches of genet's parts; each is raised there and crosses the wire as itself ---

class StorageError(GenericError):
    """A disk operation on a node failed (genet.storage); the message names the disk and why."""


class HypervisorError(GenericError):
    """A hypervisor operation failed (genet.hypervisor); the message names the instance and why."""


class LockError(GenericError):
    """A lock operation was invalid: ordering, an unknown or deleted lock (genet.locking)."""


class LockTimeout(LockError):
    """A lock could not be acquired within the requested timeout."""


_EXIT_CODES = {
    ConfigurationError: ExitCode.CONFIG_CORRUPT,
    NotMasterError: ExitCode.NOT_MASTER,
    NotClusterError: ExitCode.NOT_CLUSTER,
    ParameterError: ExitCode.UNKNOWN_FIELD,
    ConfirmationNeeded: ExitCode.CONFIRMATION,
    CertificateError: ExitCode.NODE_SETUP,
}


def exit_code(err: BaseException) -> int:
    """The process exit code a CLI reports for ``err``."""
    for cls, code in _EXIT_CODES.items():
        if isinstance(err, cls):
            return int(code)
    return int(ExitCode.FAILURE)


def format_error(err: BaseException) -> str:
    """One line a user can act on, naming the failure kind like Ganeti's CLI."""
    if isinstance(err, OpPrereqError):
        return f"Failure: prerequisites not met for this operation:\nerror type: {err.args[1]}, error details:\n{err.args[0]}"
    if isinstance(err, OpExecError):
        return f"Failure: command execution error:\n{err.args[0] if err.args else err}"
    if isinstance(err, HooksAbort):
        return "Failure: hooks execution failed:\n" + "\n".join(
            f"  node: {node}, script: {script}, output: {output}" if output else
            f"  node: {node}, script: {script} (no output)" for node, script, output in err.args[0])
    if isinstance(err, HooksFailure):
        return f"Failure: hooks general failure: {err.args[0] if err.args else err}"
    if isinstance(err, LuxiError):
        return f"Cannot communicate with the master daemon.\n{err}"
    if isinstance(err, GenericError):
        return f"Failure: {type(err).__name__}: {' '.join(str(a) for a in err.args)}"
    return f"Unhandled error: {type(err).__name__}: {err}"


def to_wire(err: BaseException) -> list:
    """Encode an error for JSON transport as [class name, args]: the nearest class of this module
    (a subclass defined elsewhere crosses as its base here); any other exception is a bug,
    sent as OpExecError naming it."""
    if not isinstance(err, GenericError):
        return ["OpExecError", [f"{type(err).__name__}: {err}"]]
    known = next(cls for cls in type(err).__mro__ if globals().get(cls.__name__) is cls)
    return [known.__name__, list(err.args)]


def from_wire(data: list) -> GenericError:
    """Rebuild an error encoded by :func:`to_wire`; unknown names become OpExecError."""
    try:
        name, args = data
    except (TypeError, ValueError):
        return OpExecError(f"malformed error from peer: {data!r}")
    cls = globals().get(name)
    if not (isinstance(cls, type) and issubclass(cls, GenericError)):
        return OpExecError(*args) if args else OpExecError(name)
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    return err
