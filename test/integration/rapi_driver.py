"""Drives Ganeti's own RAPI client (Debian python3-ganeti-rapi), unchanged, for the tests.

Runs under /usr/bin/python3 (where that package lives). The first stdin line is
``{"host", "port", "username", "password"}``; then each line
``{"method": "GetInfo", "args": [...], "kwargs": {...}}`` gets one line back:
``{"ok": result}`` or ``{"error": message, "code": http status, "type": class}`` (code
null for an error of the client itself, which sent nothing).

Two method names are the driver's own:

- ``__methods__``: every public method of GanetiRapiClient with its parameters
  (``{name: {"required": [...], "optional": [...], "kwargs": bool}}``), so a test can
  check that it covers the installed client whole;
- ``__request__`` (method, path, query, body): one request through the client's own transport
  (``_SendRequest``), for the calls of a newer Ganeti client the installed one lacks;
- ``__poll_job__`` (job_id, timeout): Ganeti's client-side job poll over RAPI
  (ganeti.rapi.client_utils.PollJob, i.e. cli.GenericPollJob with RapiJobPollCb), which
  the Debian package does not ship; answers ``{"status", "opresult", "messages", "calls"}``
  or an error once ``timeout`` seconds have passed without the loop ending.
"""
import inspect
import json
import sys
import time

from ganeti.rapi import client as rapi_client

FINAL_OR_CANCELING = ("success", "error", "canceling", "canceled")


class PollTimeout(rapi_client.Error):
    """Ganeti's poll loop did not end in time (a /wait that never says "final" makes it spin)."""


def public_methods():
    methods = {}
    for name, func in inspect.getmembers(rapi_client.GanetiRapiClient, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = list(inspect.signature(func).parameters.values())[1:]     # without self
        plain = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        methods[name] = {"required": [p.name for p in plain if p.default is p.empty],
                         "optional": [p.name for p in plain if p.default is not p.empty],
                         "kwargs": any(p.kind == p.VAR_KEYWORD for p in params)}
    return methods


def poll_job(cl, job_id, timeout):
    """The loop of Ganeti's GenericPollJob, as RapiJobPollCb feeds it.

    Each round asks /wait with the status and the last log serial seen so far; a null
    answer means "no change", and the loop asks again at once. It ends only on a reply
    whose status is final (or canceling) and that carries no log entries; then the job's
    status is read once more, as GenericPollJob does for its result.
    """
    seen_info, seen_serial, messages, calls = None, None, [], 0
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise PollTimeout(f"job {job_id}: still polling after {timeout}s and {calls} calls"
                              f" (last status {seen_info})")
        calls += 1
        change = cl.WaitForJobChange(job_id, ["status"], seen_info, seen_serial)
        if change is None:
            continue
        entries = change["log_entries"]
        for serial, _stamp, _kind, message in entries:
            messages.append(message)
            seen_serial = serial if seen_serial is None else max(seen_serial, serial)
        if not entries and change["job_info"][0] in FINAL_OR_CANCELING:
            break
        seen_info = change["job_info"]
    job = cl.GetJobStatus(job_id)
    return {"status": job["status"], "opresult": job["opresult"], "messages": messages, "calls": calls}


def main():
    conf = json.loads(sys.stdin.readline())
    cl = rapi_client.GanetiRapiClient(conf["host"], port=conf["port"], username=conf.get("username"),
                                      password=conf.get("password"))
    own = {"__methods__": lambda: public_methods(),
           "__poll_job__": lambda job_id, timeout=60: poll_job(cl, job_id, timeout),
           "__request__": lambda method, path, query, body: cl._SendRequest(method, path, query, body)}
    for line in sys.stdin:
        request = json.loads(line)
        method = own.get(request["method"]) or getattr(cl, request["method"])
        try:
            result = method(*request.get("args", []), **request.get("kwargs", {}))
            reply = {"ok": result}
        except rapi_client.Error as err:
            reply = {"error": str(err), "code": getattr(err, "code", None), "type": type(err).__name__}
        except Exception as err:     # the client's own checks (assert, ValueError): no request made
            reply = {"error": f"{type(err).__name__} in the client: {err}", "code": None,
                     "type": type(err).__name__}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
