"""RAPI /2/filters and /2/filters/[uuid]: the job filter rules (gnt-filter(8)), as Ganeti's doc/rapi.rst
describes them. A change is made at once through luxi (not as a job) and answers the rule's UUID."""
from __future__ import annotations

from genet.opcodes import Param
from genet.ptypes import Bool, Int, Json, ListOf, ParamType
from genet.rapi.baserlib import HttpBadRequest, Resource, body_dict, call, query_flag, reason_trail

FILTER_RULE_FIELDS = ["watermark", "priority", "predicates", "action", "reason_trail", "uuid"]
RULE_BODY = (
    Param("priority", Int(0), 0, "Non-negative; lower numbers are tried first"),
    Param("predicates", ListOf(ParamType()), [], "[name, expression] each: jobid, opcode or reason"),
    Param("action", Json(), "CONTINUE", "ACCEPT, PAUSE, REJECT, CONTINUE or [\"RATE_LIMIT\", n]"),
    Param("reason", ListOf(ParamType()), [], "The rule's reason trail: [[source, reason, nanoseconds], ...]"),
)


def _rule(req, uuid: str | None) -> str:
    """Add or replace a rule from the body (Ganeti's parameters); luxi checks the values."""
    body = body_dict(req)
    known = {p.name: p for p in RULE_BODY}
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise HttpBadRequest(f"Invalid body parameters: filter rule doesn't support the parameter '{unknown[0]}'")
    values = {name: body.get(name, param.default) for name, param in known.items()}
    for name, kind in (("priority", int), ("predicates", list), ("reason", list)):
        if not isinstance(values[name], kind) or isinstance(values[name], bool):
            raise HttpBadRequest(f"'{name}' must be {'an integer' if kind is int else 'a list'}")
    reason = values["reason"] + reason_trail(req)
    return call("ReplaceFilter", uuid, values["priority"], values["predicates"], values["action"], reason)


class R_2_filters(Resource):
    PATTERN = "/2/filters"
    DOC = "Job filter rules (GET: uuid and uri each, bulk: every field; POST adds one and answers its UUID)"
    QUERY = {"GET": (Param("bulk", Bool(), False, "1: every rule with its fields"),)}
    BODY = {"POST": RULE_BODY}

    def GET(self, req):
        if query_flag(req, "bulk"):
            return [dict(zip(FILTER_RULE_FIELDS, row)) for row in call("QueryFilters", None, FILTER_RULE_FIELDS)]
        return [{"uuid": uuid, "uri": f"/2/filters/{uuid}"} for [uuid] in call("QueryFilters", None, ["uuid"])]

    def POST(self, req):
        return _rule(req, None)


class R_2_filters_uuid(Resource):
    PATTERN = "/2/filters/([^/]+)"
    DOC = "One job filter rule (GET its fields, PUT replaces or creates it with this UUID, DELETE removes it)"
    BODY = {"PUT": RULE_BODY}

    def GET(self, req):
        [row] = call("QueryFilters", [req.items[0]], FILTER_RULE_FIELDS)
        return dict(zip(FILTER_RULE_FIELDS, row))

    def PUT(self, req):
        return _rule(req, req.items[0])

    def DELETE(self, req):
        return call("DeleteFilter", req.items[0])
