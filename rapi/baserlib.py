"""What every RAPI resource shares: HTTP errors, the request, opcode building, luxi.

Request bodies become opcodes through the opcode's own parameter list
(genet.opcodes), so RAPI, CLI and validation agree: an unknown body field or a
wrong type is a 400 naming the field, and nothing is submitted. Ganeti's body
names and the query arguments that carry a parameter are declared on the
parameter too (``Param.rapi``, ``Param.query``); a query argument neither the
opcode nor the resource takes is a 400 naming it, never ignored.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from genet import errors, luxi, opcodes
from genet.ptypes import String


class HttpError(errors.GenericError):
    """An HTTP error reply: status, reason phrase and an explanation for the client."""
    code = 500
    reason = "Internal Server Error"

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message or self.reason


def _http_error(code: int, reason: str) -> type[HttpError]:
    return type(reason.replace(" ", "").replace("-", ""), (HttpError,), {"code": code, "reason": reason})


HttpBadRequest = _http_error(400, "Bad Request")
HttpUnauthorized = _http_error(401, "Unauthorized")
HttpForbidden = _http_error(403, "Forbidden")
HttpNotFound = _http_error(404, "Not Found")
HttpMethodNotAllowed = _http_error(405, "Method Not Allowed")
HttpRequestEntityTooLarge = _http_error(413, "Request Entity Too Large")
HttpBadGateway = _http_error(502, "Bad Gateway")
HttpServiceUnavailable = _http_error(503, "Service Unavailable")


def http_error_for(err: errors.GenericError) -> HttpError:
    """The HTTP error Ganeti's RAPI gives for a luxi error (an HTTP error already is one)."""
    if isinstance(err, HttpError):
        return err
    text = str(err.args[0]) if err.args else type(err).__name__
    if isinstance(err, errors.OpPrereqError):
        ecode = err.args[1] if len(err.args) > 1 else None
        return (HttpNotFound if ecode == errors.ECode.NOENT.value else HttpBadRequest)(text)
    if isinstance(err, (errors.ParameterError, errors.TagError, errors.OpCodeUnknown)):
        return HttpBadRequest(text)
    if isinstance(err, (errors.JobQueueDrainError, errors.JobQueueFull, errors.QuorumError)):
        return HttpServiceUnavailable(text)
    if isinstance(err, (errors.LuxiError, errors.NotMasterError, errors.NotClusterError)):
        return HttpBadGateway(text)
    return HttpError(text)


# --- luxi, one connection per server thread -----------------------------------

_local = threading.local()


def client() -> luxi.Client:
    cl = getattr(_local, "client", None)
    if cl is None:
        cl = _local.client = luxi.Client(timeout=120)
    return cl


def call(method: str, *args: Any) -> Any:
    """A luxi call; a broken connection is retried once on a fresh one."""
    try:
        return client().call(method, *args)
    except errors.LuxiError:
        client().close()
        return client().call(method, *args)


# --- the request as resources see it ----------------------------------------

@dataclass
class Request:
    method: str
    path: str
    items: list[str]                       # the variable parts of the path, in order
    query: dict[str, list[str]]
    body: Any                               # decoded JSON, None when empty
    user: Any = None
    headers: dict[str, str] = field(default_factory=dict)


FLAG_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


def _flag(name: str, text: str) -> bool:
    """A 0/1 query argument (Ganeti encodes booleans so, its client also True/False)."""
    try:
        return FLAG_VALUES[text.strip().lower()]
    except KeyError:
        raise HttpBadRequest(f"query argument {name!r} must be 0 or 1, got {text!r}") from None


def query_flag(req: Request, name: str, default: bool = False) -> bool:
    """A 0/1 query argument; anything else is a 400."""
    values = req.query.get(name)
    return _flag(name, values[-1]) if values else default


def query_value(req: Request, name: str, default: str | None = None) -> str | None:
    values = req.query.get(name)
    return values[-1] if values else default


def query_param(param: opcodes.Param, text: str):
    """A parameter's value from its query argument: a flag for a boolean, else parsed as the CLI does."""
    try:
        if param.type.schema.get("type") == "boolean":
            return param.type.check(_flag(param.query, text))
        return param.type.parse(text)
    except ValueError as err:
        raise HttpBadRequest(f"query argument {param.query!r}: {err}") from None


def body_dict(req: Request, allow_null: bool = True) -> dict:
    """The body as an object; web managers send ``null`` for actions without one."""
    if req.body is None and allow_null:
        return {}
    if not isinstance(req.body, dict):
        raise HttpBadRequest(f"the request body must be a JSON object, got {type(req.body).__name__}")
    return dict(req.body)


def reason_trail(req: Request) -> list:
    import time
    trail = []
    for text in req.query.get("reason", []):
        trail.append(["rapi:user", text, int(time.time() * 1e9)])
    trail.append([f"rapi:{req.method.lower()}:{req.path}", getattr(req.user, "name", None) or "anonymous",
                  int(time.time() * 1e9)])
    return trail


def query_params(opclass: type[opcodes.OpCode], method: str) -> dict[str, opcodes.Param]:
    """The opcode's parameters a query argument may carry, by argument; a GET changes nothing, so
    it takes no ``dry-run``."""
    return {p.query: p for p in opclass.all_params()
            if p.query and not (method == "GET" and p.name == "dry_run")}


def build_opcode(opclass: type[opcodes.OpCode], req: Request, body: dict | None = None,
                 **static: Any) -> opcodes.OpCode:
    """An opcode from the body, the query arguments its schema names and the path's values.

    Body fields go by the opcode's parameter names or by Ganeti's (``Param.rapi``: ``name``,
    ``os``...); query arguments by ``Param.query`` (``dry-run``, ``force``, ``type``...).
    A body field the opcode does not have, a parameter given twice with different values (body,
    query, path), or one the path already sets, is a 400. The reason trail gains the request.
    """
    body = dict(body if body is not None else body_dict(req))
    params = opclass.all_params()
    for param in params:
        if param.rapi and param.rapi in body:
            if param.name in body:
                raise HttpBadRequest(f"give either {param.rapi!r} or {param.name!r}, not both")
            body[param.name] = body.pop(param.rapi)
    known = {p.name for p in params}
    unknown = sorted(set(body) - known)
    if unknown:
        raise HttpBadRequest(f"unknown parameter(s) for {opclass.OP_ID}: {', '.join(unknown)}")
    for arg, param in query_params(opclass, req.method).items():
        if arg in req.query:
            value = query_param(param, req.query[arg][-1])
            if param.name in body and body[param.name] != value:
                raise HttpBadRequest(f"{param.name!r} is given in the body and as ?{arg}= with different values")
            body[param.name] = value
    clash = sorted(k for k in static if k in body and body[k] != static[k])
    if clash:
        raise HttpBadRequest(f"parameter(s) {', '.join(clash)} are given by the URL and must not differ in the body")
    values = {**body, **static}
    values["reason"] = list(values.get("reason") or []) + reason_trail(req)
    try:
        return opclass(**values)
    except errors.OpPrereqError as err:
        raise HttpBadRequest(str(err.args[0])) from None


def submit(ops: list[opcodes.OpCode]) -> int:
    return call("SubmitJob", [op.to_dict() for op in ops])


def wait_job(job_id: int) -> Any:
    """Wait for a job the RAPI itself submitted (OS list, console); its first result."""
    from genet.cli.base import poll_job
    return poll_job(client(), job_id, feedback=lambda entry: None)[0]


REASON = opcodes.Param("reason", String(), None, "Reason recorded in the job's reason trail (Ganeti's"
                       " client may send it with any call; a read that submits no job has no trail for it)")


class Resource:
    """One URL pattern; subclasses define GET/PUT/POST/DELETE taking a Request.

    ``OPCODES`` names the opcode each method builds from its body and query (its parameters are
    the body schema and the query arguments it takes); ``QUERY`` the query arguments a method
    reads itself, ``BODY`` the body fields it reads itself, as Params. Any other query argument
    is a 400 naming it (``check_query``), so none is accepted and ignored.
    ``WRITE_METHODS`` need a user with write access, ``AUTH_METHODS`` any user.
    """
    WRITE_METHODS: ClassVar[frozenset[str]] = frozenset({"PUT", "POST", "DELETE"})
    AUTH_METHODS: ClassVar[frozenset[str]] = frozenset()     # need a user, read access is enough
    PATTERN: ClassVar[str] = ""
    DOC: ClassVar[str] = ""
    OPCODES: ClassVar[dict[str, str]] = {}
    QUERY: ClassVar[dict[str, tuple[opcodes.Param, ...]]] = {}
    BODY: ClassVar[dict[str, tuple[opcodes.Param, ...]]] = {}

    def methods(self) -> list[str]:
        return [m for m in ("GET", "PUT", "POST", "DELETE") if callable(getattr(self, m, None))]

    @classmethod
    def opcode(cls, method: str) -> type[opcodes.OpCode] | None:
        name = cls.OPCODES.get(method)
        return getattr(opcodes, name) if name else None

    @classmethod
    def query_args(cls, method: str) -> dict[str, opcodes.Param]:
        """Every query argument ``method`` takes: the reason, the resource's own, its opcode's."""
        opclass = cls.opcode(method)
        args = {"reason": REASON, **{p.name: p for p in cls.QUERY.get(method, ())}}
        if opclass is not None:
            args.update(query_params(opclass, method))
        return args


def check_query(resource: type[Resource], req: Request) -> None:
    """Refuse a query argument the resource does not take: Ganeti ignores them, genet says so."""
    accepted = resource.query_args(req.method)
    unknown = sorted(set(req.query) - set(accepted))
    if unknown:
        names = ", ".join(repr(u[:40]) for u in unknown[:5])
        takes = ", ".join(sorted(accepted))
        raise HttpBadRequest(f"query argument(s) {names} not supported by {req.method} {req.path[:200]}"
                             f" (it takes: {takes})")
