"""The OpenAPI 3 document of the RAPI, generated from the resources and the opcode schema.

A mutating method's body schema is its opcode's parameters (genet.opcodes), the
same list that builds the CLI options and validates requests.
"""
from __future__ import annotations

import re

from genet import __version__, opcodes
from genet.rapi import rlib2

PATH_PARAMS = {"/2/instances/": "instance_name", "/2/nodes/": "node_name", "/2/groups/": "group_name",
               "/2/networks/": "network_name", "/2/jobs/": "job_id", "/2/query/": "resource"}
# parameters a resource takes from its path or sets itself, so not from the body
FROM_PATH = {"instance_name", "node_name", "group_name", "network_name", "kind", "name", "tags"}
SET_BY_RESOURCE = {"kind", "name", "tags"}
COMMON_QUERY = [{"name": "dry-run", "in": "query", "schema": {"type": "integer", "enum": [0, 1]},
                 "description": "Only check prerequisites"},
                {"name": "reason", "in": "query", "schema": {"type": "string"},
                 "description": "Reason recorded with the job"}]
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


def body_schema(opclass: type[opcodes.OpCode], extra: dict | None = None,
                from_path: set[str] | frozenset[str] = frozenset(FROM_PATH)) -> dict:
    props, required = {}, []
    for param in opclass.all_params():
        if param.name in from_path:
            continue
        props[param.name] = dict(param.type.schema, description=param.doc)
        if param.required:
            required.append(param.name)
    props.update(extra or {})
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


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
            if params:
                operation["parameters"] = list(params)
            if opclass is not None:
                operation.setdefault("parameters", []).extend(COMMON_QUERY)
                operation["description"] = (opclass.__doc__ or "").strip().splitlines()[0] + f" ({opclass.OP_ID})"
                if issubclass(resource, rlib2.TagsResource):
                    operation["parameters"].append({"name": "tag", "in": "query", "required": True,
                                                    "schema": {"type": "array", "items": {"type": "string"}},
                                                    "style": "form", "explode": True})
                elif resource is not rlib2.R_2_nodes_name_role:
                    extra = None
                    if resource is rlib2.R_2_instances:
                        extra = {"__version__": {"type": "integer", "enum": [1]}}
                    # only what this path names is left out: a create body carries the new name
                    schema = body_schema(opclass, extra, set(names) | SET_BY_RESOURCE)
                    if extra:
                        schema["required"] = ["__version__"] + schema.get("required", [])
                    operation["requestBody"] = {"content": {"application/json": {"schema": schema}}}
            if method == "GET" and path in ("/2/instances", "/2/nodes", "/2/groups", "/2/networks", "/2/jobs"):
                operation["parameters"] = [{"name": "bulk", "in": "query", "schema": {"type": "integer",
                                                                                     "enum": [0, 1]}}]
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
