"""genet-rapi: Ganeti's remote API v2 over HTTPS, on the master node.

Twisted accepts and parses; each request is answered in a pool thread because
resources talk luxi to masterd, which blocks. Status codes follow Ganeti: 400
bad request, 401 no or wrong credentials, 403 not permitted, 404 unknown
resource or object, 405 method, 413 body too large, 502 no master, 503 queue
drained or full. Nothing else ever answers 500 unless genet itself is broken.
"""
from __future__ import annotations

import io
import json
import logging
import re
import time
from urllib.parse import parse_qs, unquote

from genet import config, errors, paths, serializer
from genet.rapi import baserlib, rlib2
from genet.rapi.auth import REALM, AuthError, UsersFile
from genet.rapi.baserlib import HttpError, Request

log = logging.getLogger("genet-rapi")
DEFAULT_PORT = 5080
MAX_BODY = 1024 * 1024


class Router:
    """Path → resource, authentication and authorisation, errors → Ganeti's replies."""

    def __init__(self, users: UsersFile, require_auth: bool, metrics=None):
        self.users = users
        self.require_auth = require_auth
        self.metrics = metrics
        self.table = [(re.compile(f"^{r.PATTERN}$"), r()) for r in rlib2.resources()]

    def route(self, path: str):
        for regex, resource in self.table:
            match = regex.match(path)
            if match:
                return resource, [unquote(g) for g in match.groups()]
        return None, []

    def handle(self, method: str, raw_path: str, headers: dict[str, str],
               body: bytes | None) -> tuple[int, dict, bytes]:
        """One request to (status, headers, body); never raises."""
        start = time.monotonic()
        try:
            code, extra, payload = 200, {}, self._dispatch(method, raw_path, headers, body)
            content_type = "application/json"
            if isinstance(payload, RawReply):
                content_type, payload = payload.content_type, payload.data
            else:
                payload = serializer.dumps(payload)
        except HttpError as err:
            code, content_type = err.code, "application/json"
            extra = {"WWW-Authenticate": f'Basic realm="{REALM}"'} if err.code == 401 else {}
            if isinstance(err, baserlib.HttpMethodNotAllowed) and getattr(err, "allow", None):
                extra["Allow"] = ", ".join(err.allow)
            payload = json.dumps({"code": err.code, "message": err.reason, "explain": err.message}).encode()
        except Exception as err:     # a bug in genet: say so, keep serving
            log.exception("%s %s failed", method, raw_path)
            code, content_type, extra = 500, "application/json", {}
            payload = json.dumps({"code": 500, "message": "Internal Server Error",
                                  "explain": f"{type(err).__name__}: {err}"}).encode()
        if self.metrics is not None:
            self.metrics.observe(method, code, time.monotonic() - start)
        return code, {"Content-Type": content_type, **extra}, payload

    def _dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes | None):
        path, _, query_string = raw_path.partition("?")
        try:
            query = parse_qs(query_string, keep_blank_values=True, strict_parsing=False, max_num_fields=200)
        except ValueError as err:
            raise baserlib.HttpBadRequest(f"malformed query string: {err}") from None
        try:
            user = self.users.authenticate(headers.get("authorization"))
        except AuthError as err:
            raise baserlib.HttpUnauthorized(str(err)) from None
        if user is None and self.require_auth:
            raise baserlib.HttpUnauthorized("authentication required")
        if path == "/metrics" and method == "GET" and self.metrics is not None:
            return RawReply(self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/2/openapi.json" and method == "GET":
            from genet.rapi import openapi
            return openapi.document()
        resource, items = self.route(path)
        if resource is None:
            raise baserlib.HttpNotFound(f"no resource {path[:200]!r}")
        handler = getattr(resource, method, None) if method in ("GET", "PUT", "POST", "DELETE") else None
        if handler is None:
            err = baserlib.HttpMethodNotAllowed(f"{method[:20]} is not allowed on {path[:200]}"
                                                f" (allowed: {', '.join(resource.methods())})")
            err.allow = resource.methods()
            raise err
        if method in resource.AUTH_METHODS and user is None:
            raise baserlib.HttpUnauthorized(f"{method} {path[:200]} needs a user (read access is enough)")
        if method in resource.WRITE_METHODS:
            if user is None:
                raise baserlib.HttpUnauthorized(f"{method} {path[:200]} needs a user with write access")
            if not user.can_write:
                raise baserlib.HttpForbidden(f"user {user.name} may not write")
        data = None
        if body and body.strip():
            try:
                data = serializer.loads(body)
            except RecursionError:
                raise baserlib.HttpBadRequest("the request body is nested too deeply") from None
            except (ValueError, UnicodeDecodeError) as err:
                if "depth" in str(err):      # orjson's nesting limit
                    raise baserlib.HttpBadRequest("the request body is nested too deeply") from None
                raise baserlib.HttpBadRequest(f"the request body is not valid JSON: {err}") from None
        req = Request(method, path, items, query, data, user, headers)
        baserlib.check_query(type(resource), req)
        try:
            return handler(req)
        except errors.GenericError as err:
            raise baserlib.http_error_for(err) from None
        except RecursionError:
            raise baserlib.HttpBadRequest("the request body is nested too deeply") from None


class RawReply:
    """A reply that is not JSON (the Prometheus text)."""

    def __init__(self, data: bytes, content_type: str):
        self.data, self.content_type = data, content_type


class BoundedBody(io.BytesIO):
    """A request body kept up to MAX_BODY bytes; beyond that only counted."""

    def __init__(self):
        super().__init__()
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        if self.size <= MAX_BODY:
            return super().write(data)
        return len(data)

    @property
    def too_large(self) -> bool:
        return self.size > MAX_BODY


def make_site(router: Router):
    from twisted.internet import threads
    from twisted.web import resource, server

    class RapiRequest(server.Request):
        def gotLength(self, length):
            super().gotLength(length)
            self.content = BoundedBody()      # never a temporary file, never more than MAX_BODY

    class RapiResource(resource.Resource):
        isLeaf = True

        def render(self, request):
            method = request.method.decode("latin-1")
            raw_path = request.uri.decode("latin-1")
            headers = {k.decode("latin-1").lower(): v[-1].decode("latin-1")
                       for k, v in request.requestHeaders.getAllRawHeaders()}
            content = request.content
            if isinstance(content, BoundedBody) and content.too_large:
                err = baserlib.HttpRequestEntityTooLarge(f"the request body is larger than {MAX_BODY} bytes")
                reply = (413, {"Content-Type": "application/json"},
                         json.dumps({"code": 413, "message": err.reason, "explain": err.message}).encode())
                if router.metrics is not None:
                    router.metrics.observe(method, 413, 0.0)
                return self._write(request, reply)
            body = content.getvalue() if isinstance(content, io.BytesIO) else (content.read() if content else b"")
            d = threads.deferToThread(router.handle, method, raw_path, headers, body)
            d.addCallback(lambda reply: self._write(request, reply, finish=True))
            return server.NOT_DONE_YET

        @staticmethod
        def _write(request, reply, finish: bool = False):
            code, headers, payload = reply
            if request._disconnected:
                return None
            request.setResponseCode(code)
            for key, value in headers.items():
                request.setHeader(key, value)
            if not finish:
                return payload
            request.setHeader("Content-Length", str(len(payload)))
            request.write(payload)
            request.finish()
            return None

    site = server.Site(RapiResource())
    site.requestFactory = RapiRequest
    site.displayTracebacks = False
    site.noisy = False
    return site


def context_factory():
    """TLS with the RAPI certificate (ssl_utils.rapi_cert, read again when renewed); clients are
    not asked for one (Basic auth is the check)."""
    from genet import ssl_utils
    return ssl_utils.server_context_factory(ssl_utils.rapi_cert, require_client=False)


def default_bind_address() -> str:
    """The master's primary address: several nodes of a dev cluster share one host."""
    try:
        data = config.load(paths.config_file())
        return data["nodes"][paths.node_name()]["primary_ip"]
    except (errors.GenericError, KeyError):
        return "0.0.0.0"
