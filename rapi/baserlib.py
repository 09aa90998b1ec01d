"""What every RAPI resource shares: HTTP errors, the request, opcode building, luxi.

Request bodies become opcodes through the opcode's own parameter list
(genet.opcodes), so RAPI, CLI and validation agree: an unknown body field or a
wrong type is a 400 naming the field, and nothing is submitted.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from genet import errors, luxi, opcodes


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
HttpNotImplemented = _http_error(501, "Not Implemented")
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


def query_flag(req: Request, name: str, default: bool = False) -> bool:
    """A 0/1 query argument (Ganeti encodes booleans so); anything else is a 400."""
    values = req.query.get(name)
    if not values:
        return default
    value = values[-1].strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise HttpBadRequest(f"query argument {name!r} must be 0 or 1, got {values[-1]!r}")


def query_value(req: Request, name: str, default: str | None = None) -> str | None:
    values = req.query.get(name)
    return values[-1] if values else default


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


def build_opcode(opclass: type[opcodes.OpCode], req: Request, body: dict | None = None,
                 rename: dict[str, str] | None = None, **static: Any) -> opcodes.OpCode:
    """An opcode from the body (Ganeti's names, ``rename``d) plus the path's values.

    ``dry-run`` comes from the query string (of a request that changes something: a GET changes
    nothing and keeps its answer, as in Ganeti); the reason trail gains the request.
    A body field the opcode does not have, or that the path already sets, is a 400.
    """
    body = dict(body if body is not None else body_dict(req))
    body.pop("__version__", None)
    for old, new in (rename or {}).items():
        if old in body:
            if new in body:
                raise HttpBadRequest(f"give either {old!r} or {new!r}, not both")
            body[new] = body.pop(old)
    known = {p.name for p in opclass.all_params()}
    unknown = sorted(set(body) - known)
    if unknown:
        raise HttpBadRequest(f"unknown parameter(s) for {opclass.OP_ID}: {', '.join(unknown)}")
    clash = sorted(k for k in static if k in body and body[k] != static[k])
    if clash:
        raise HttpBadRequest(f"parameter(s) {', '.join(clash)} are given by the URL and must not differ in the body")
    params = {**body, **static}
    if query_flag(req, "dry-run") and req.method != "GET":
        params["dry_run"] = True
    params["reason"] = list(params.get("reason") or []) + reason_trail(req)
    try:
        return opclass(**params)
    except errors.OpPrereqError as err:
        raise HttpBadRequest(str(err.args[0])) from None


def submit(ops: list[opcodes.OpCode]) -> int:
    return call("SubmitJob", [op.to_dict() for op in ops])


def wait_job(job_id: int) -> Any:
    """Wait for a job the RAPI itself submitted (OS list, console); its first result."""
    from genet.cli.base import poll_job
    return poll_job(client(), job_id, feedback=lambda entry: None)[0]


class Resource:
    """One URL pattern; subclasses define GET/PUT/POST/DELETE taking a Request.

    ``WRITE_METHODS`` need a user with write access, ``AUTH_METHODS`` any user.
    """
    WRITE_METHODS: ClassVar[frozenset[str]] = frozenset({"PUT", "POST", "DELETE"})
    AUTH_METHODS: ClassVar[frozenset[str]] = frozenset()     # need a user, read access is enough
    PATTERN: ClassVar[str] = ""
    DOC: ClassVar[str] = ""

    def methods(self) -> list[str]:
        return [m for m in ("GET", "PUT", "POST", "DELETE") if callable(getattr(self, m, None))]
