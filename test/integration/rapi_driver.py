"""Drives Ganeti's own RAPI client (Debian python3-ganeti-rapi), unchanged, for the tests.

Runs under /usr/bin/python3 (where that package lives). The first stdin line is
``{"host", "port", "username", "password"}``; then each line
``{"method": "GetInfo", "args": [...], "kwargs": {...}}`` gets one line back:
``{"ok": result}`` or ``{"error": message, "code": http status, "type": class}``.
"""
import json
import sys

from ganeti.rapi import client as rapi_client


def main():
    conf = json.loads(sys.stdin.readline())
    cl = rapi_client.GanetiRapiClient(conf["host"], port=conf["port"], username=conf.get("username"),
                                      password=conf.get("password"))
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = getattr(cl, request["method"])(*request.get("args", []), **request.get("kwargs", {}))
            reply = {"ok": result}
        except rapi_client.Error as err:
            reply = {"error": str(err), "code": getattr(err, "code", None), "type": type(err).__name__}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
