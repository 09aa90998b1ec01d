"""A small RAPI client on urllib: JSON requests, Basic auth, and waiting for jobs.

The suite talks to the RAPI the way a web manager would, over HTTPS with Basic auth, and needs
nothing beyond the standard library, so it runs from any machine with Python 3. Ganeti's RAPI
and genet's answer the same requests, so nothing here is genet-specific.
"""
from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from qa.report import CheckFailed

FINAL_JOB_STATES = ("success", "error", "canceled")


class RapiError(CheckFailed):
    """An HTTP error status; ``status`` is the code, the message Ganeti's error body."""

    def __init__(self, method: str, path: str, status: int, message: str):
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status


def tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """How the RAPI's certificate is checked.

    With ``ca_file`` (the cluster's certificate, e.g. a copy of ``rapi.pem``), the server must
    present a certificate that chains to it; its host name is not checked, since a cluster's
    self-signed certificate names the cluster, not the address the suite uses. Without
    ``verify`` nothing is checked. Otherwise the system's CAs and the host name are."""
    if not verify:
        return ssl._create_unverified_context()
    context = ssl.create_default_context(cafile=ca_file)
    if ca_file:
        context.check_hostname = False
    return context


class RapiClient:
    """Requests to one RAPI base URL (``https://HOST:5080``)."""

    def __init__(self, url: str, user: str | None, password: str | None,
                 context: ssl.SSLContext, timeout: float = 60):
        self.url = url.rstrip("/")
        self.context = context
        self.timeout = timeout
        self.auth = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.auth = f"Basic {token}"

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        """One request; the decoded JSON answer, or RapiError for a status of 400 or more."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=self.timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            raise RapiError(method, path, err.code, _error_message(err)) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise CheckFailed(f"{method} {path}: cannot reach the RAPI at {self.url}: {reason}") from None
        return json.loads(text) if text.strip() else None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    def put(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.request("PUT", path, body, query or None)

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.request("POST", path, body, query or None)

    def delete(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.request("DELETE", path, body, query or None)

    def wait_job(self, job_id: int, timeout: float = 600) -> dict:
        """Follow a job with ``/2/jobs/ID/wait`` (each call waits for a change, at most some
        seconds) until it ends; then its full record from ``/2/jobs/ID``."""
        deadline = time.monotonic() + timeout
        previous = None
        while time.monotonic() < deadline:
            change = self.request("GET", f"/2/jobs/{job_id}/wait",
                                  {"fields": ["status"], "previous_job_info": previous,
                                   "previous_log_serial": None})
            if change is not None:
                previous = change["job_info"]
                if previous and previous[0] in FINAL_JOB_STATES:
                    return self.get(f"/2/jobs/{job_id}")
        raise CheckFailed(f"job {job_id} did not end within {timeout:.0f} s")

    def run_job(self, method: str, path: str, body: Any = None, timeout: float = 600, **query: Any) -> dict:
        """Submit a job (the answer is its id), wait for it, require success; the job."""
        job_id = self.request(method, path, body, query or None)
        if not isinstance(job_id, (int, str)) or isinstance(job_id, bool) or not str(job_id).isdigit():
            raise CheckFailed(f"{method} {path} answered {job_id!r}, not a job id")
        job = self.wait_job(int(job_id), timeout)
        if job.get("status") != "success":
            raise CheckFailed(f"job {job_id} ({method} {path}) ended {job.get('status')}: "
                              f"{json.dumps(job.get('opresult'))[:400]}")
        return job


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(err.read().decode() or "null")
    except (ValueError, OSError):
        return err.reason
    if isinstance(body, dict):
        return str(body.get("message") or body.get("explain") or body)
    return str(body)
