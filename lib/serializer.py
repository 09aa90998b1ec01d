"""JSON for genet's wire protocols (luxi, RPC, RAPI): orjson when it can, the json module otherwise.

orjson encodes about fifteen times faster, which is most of what a large query
costs. It refuses what JSON cannot say exactly (integers beyond 64 bits, and
similar), so those few values take the standard library's path.
"""
from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:      # the standard library is enough, only slower
    orjson = None

_OPTIONS = orjson.OPT_NON_STR_KEYS if orjson is not None else 0


def dumps(obj: Any) -> bytes:
    if orjson is not None:
        try:
            return orjson.dumps(obj, option=_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            pass
    return json.dumps(obj).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; a ValueError (json.JSONDecodeError or orjson's) names what is wrong."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)
