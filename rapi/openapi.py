"""The OpenAPI 3 document of the RAPI, generated from the resources and the opcode schema.

A mutating method's body schema is its opcode's parameters (genet.opcodes), the
same list that builds the CLI options and validates requests, under the names
clients send (Ganeti's, ``Param.rapi``, beside the opcode's); each method's query
arguments are the ones the router accepts (``Resource.query_args``).
"""
from __future__ import annotations

import re

from genet import __version__, opcodes
from genet.rapi import rlib2

PATH_PARAMS = {"/2/instances/": "instance_name", "/2/nodes/": "node_name", "/2/groups/": "group_name",
               "/2/networks/": "network_name", "/2/jobs/": "job_id", "/2/query/": "resource"}
FLAG = {"type": "integer", "enum": [0, 1]}       # Ganeti's clients send booleans in a query as 0/1
ERROR = {"description": "Error: {code, message, explain}", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                                     "explain": {"type": "string"}}}}}}


def openapi_path(pattern: str) -> tuple[str, list[str]]:
    """``/2/instances/([^/]+)/disk/([^/]+)/grow`` → ``/2/instances/{instance_name}/disk/{disk}/grow``."""
    names: list[str] = []

    def repl(match: re.Match) -> str:
        before = pattern[:match.start()]
        name = "disk" if before.endswith("/disk/") else next(
            (v for k, v in PATH_PARAMS.items() if before.endswith(k)), f"arg{len(names)}")
        names.append(name)
        return "{" + name + "}"
    return re.sub(r"\(\[\^/\]\+\)", repl, pattern), names


def body_schema(opclass: type[opcodes.OpCode], extra: tuple[opcodes.Param, ...] = (),
                from_path: set[str] | frozenset[str] = frozenset()) -> dict:
    """The body an opcode takes, under the names clients send: a parameter Ganeti's RAPI names
    otherwise (``Param.rapi``) shows under both names, one of which a required one needs."""
    props, required, either = {}, [], []
    for param in opclass.all_params():
        if param.name in from_path:
            continue
        props[param.name] = dict(param.type.schema, description=param.doc)
        if param.rapi:
            props[param.rapi] = dict(param.type.schema, description=f"{param.doc} (Ganeti's name for {param.name})")
            props[param.name]["description"] += f" (or {param.rapi}, Ganeti's name)"
            if param.required:
                either.append({"anyOf": [{"required": [param.rapi]}, {"required": [param.name]}]})
        elif param.required:
            required.append(param.name)
    for param in extra:
        props[param.name] = dict(param.type.schema, description=param.doc)
        if param.required:
            required.append(param.name)
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    if either:
        schema["allOf"] = either
    return schema


def query_parameters(resource: type[rlib2.Resource], method: str) -> list[dict]:
    """The query arguments a method takes (the check that refuses any other reads the same list)."""
    out = []
    for arg, param in sorted(resource.query_args(method).items()):
        schema = param.type.schema
        entry = {"name": arg, "in": "query", "description": param.doc,
                 "schema": FLAG if schema.get("type") == "boolean" else dict(schema)}
        if schema.get("type") == "array":
            entry.update(style="form", explode=True)
        if param.required:
            entry["required"] = True
        out.append(entry)
    return out


def document() -> dict:
    paths: dict[str, dict] = {}
    for resource in sorted(rlib2.resources(), key=lambda r: r.PATTERN):
        path, names = openapi_path(resource.PATTERN)
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]
        item: dict = {}
        for method in resource().methods():
            op_name = rlib2.opcode_for(resource, method)
            opclass = getattr(opcodes, op_name, None) if op_name else None
            operation: dict = {"summary": resource.DOC, "operationId": f"{resource.__name__}_{method}",
                               "responses": {"200": {"description": "Success" + (": a job id" if opclass else ""),
                                                     "content": {"application/json": {"schema": (
                                                         {"type": "integer"} if opclass else {})}}},
                                             "default": ERROR}}
            parameters = params + query_parameters(resource, method)
            if parameters:
                operation["parameters"] = parameters
            described = resource.opcode(method)
            if described is not None:
                operation["description"] = (described.__doc__ or "").strip().splitlines()[0] + f" ({described.OP_ID})"
            if resource is rlib2.R_2_nodes_name_role and method == "PUT":
                body = {"type": "string", "enum": ["regular", "master-candidate", "candidate", "drained", "offline"]}
                operation["requestBody"] = {"content": {"application/json": {"schema": body}}}
            elif opclass is not None and not issubclass(resource, rlib2.TagsResource):
                # what the path names is left out: a create body carries the new name
                schema = body_schema(opclass, resource.BODY.get(method, ()), set(names))
                operation["requestBody"] = {"content": {"application/json": {"schema": schema}}}
            item[method.lower()] = operation
        paths[path] = item
    return {
        "openapi": "3.0.3",
        "info": {"title": "genet RAPI v2 (Ganeti-compatible)", "version": __version__,
                 "description": "Ganeti's remote API v2 as served by genet-rapi. Mutating calls answer a job id."},
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "security": [{"basic": []}, {}],
        "paths": paths,
    }
