"""RAPI v2 resources: Ganeti's URLs, bodies and replies, each mapped onto an opcode or a query.

Every mutating call submits one job and answers its id (a JSON number). Body
fields are the opcode's parameters, by their names or Ganeti's (``Param.rapi``),
and query arguments the ones its parameters declare (``Param.query``), both read
by baserlib.build_opcode; a resource declares the opcode of each method
(``OPCODES``) and the few query arguments and body fields it reads itself
(``QUERY``, ``BODY``). Anything else is a 400 and nothing is submitted.
"""
from __future__ import annotations

from genet import errors, opcodes
from genet.opcodes import Param, REQUIRED
from genet.ptypes import Bool, Int, ListOf, OneOf, Only, String, Tag
from genet.rapi.baserlib import (HttpBadRequest, HttpNotFound, HttpServiceUnavailable, Request, Resource,
                                 body_dict, build_opcode, call, query_flag, query_value, submit, wait_job)

FEATURES = ["instance-create-reqv1", "instance-reinstall-reqv1", "node-migrate-reqv1", "node-evac-res1"]
COMMON_FIELDS = ["ctime", "mtime", "uuid", "serial_no", "tags"]
I_FIELDS = ["name", "admin_state", "os", "pnode", "snodes", "disk_template", "nic.ips", "nic.macs",
            "nic.modes", "nic.uuids", "nic.names", "nic.links", "nic.networks", "nic.networks.names",
            "nic.bridges", "network_port", "disk.sizes", "disk.spindles", "disk_usage", "disk.uuids",
            "disk.names", "beparams", "hvparams", "oper_state", "oper_ram", "oper_vcpus", "status",
            "custom_hvparams", "custom_beparams", "custom_nicparams"] + COMMON_FIELDS
N_FIELDS = ["name", "offline", "master_candidate", "drained", "dtotal", "dfree", "sptotal", "spfree",
            "mtotal", "mnode", "mfree", "hv_state", "pinst_cnt", "sinst_cnt", "tags", "ctotal", "cnos",
            "cnodes", "csockets", "pip", "sip", "role", "pinst_list", "sinst_list", "master_capable",
            "vm_capable", "ndparams", "group.uuid", "ctime", "mtime", "uuid", "serial_no"]
G_FIELDS = ["alloc_policy", "name", "node_cnt", "node_list", "ipolicy", "custom_ipolicy", "diskparams",
            "custom_diskparams", "ndparams", "custom_ndparams", "networks"] + COMMON_FIELDS
NET_FIELDS = ["name", "network", "gateway", "network6", "gateway6", "mac_prefix", "free_count",
              "reserved_count", "map", "group_list", "inst_list", "external_reservations"] + COMMON_FIELDS
J_FIELDS_BULK = ["id", "ops", "status", "summary", "opstatus", "received_ts", "start_ts", "end_ts"]
J_FIELDS = J_FIELDS_BULK + ["oplog", "opresult"]
NODE_ROLES = {"M": "master", "C": "master-candidate", "R": "regular", "D": "drained", "O": "offline"}
QUERY_RESOURCES = ("instance", "node", "group", "network", "job", "cluster", "export")

# query arguments and body fields resources read themselves (an opcode's come from its schema)
BULK = Param("bulk", Bool(), False, "1: every object with its details, not only its name and URI")
TAGS = Param("tag", ListOf(Tag()), REQUIRED, "The tags, one argument each: ?tag=a&tag=b")
FIELDS = Param("fields", String(), None, "Fields, comma-separated: ?fields=a,b")


# --- queries ------------------------------------------------------------------

def _rows_as_dicts(result: dict, fields: list[str]) -> list[dict]:
    """Query rows as dicts; a value the node could not give (status != 0) is null."""
    return [{f: (value if status == 0 else None) for f, (status, value) in zip(fields, row)}
            for row in result["data"]]


def query_items(what: str, fields: list[str], names: list[str] | None = None) -> list[dict]:
    qfilter = None
    if names is not None:
        qfilter = ["|"] + [["=", "name", n] for n in names]
    return _rows_as_dicts(call("Query", what, fields, qfilter), fields)


def one_item(what: str, kind: str, name: str, fields: list[str]) -> dict:
    _check_name(name, kind)
    found = query_items(what, fields, [name])
    if not found:
        raise HttpNotFound(f"{kind} '{name}' not known")
    return found[0]


def _named(req: Request, kind: str) -> str:
    """The object name in the path (the first variable part), checked."""
    _check_name(req.items[0], kind)
    return req.items[0]


def _check_name(name: str, kind: str) -> None:
    """Names come from the path: refuse the ones no object can have before asking anyone."""
    if not name or len(name) > 255 or "/" in name or name in (".", "..") or any(ord(c) < 32 for c in name):
        raise HttpNotFound(f"{kind} '{name[:80]}' not known")


def with_memory(inst: dict) -> dict:
    """Ganeti shows ``memory`` (the pre-2.6 name) beside maxmem in beparams."""
    beparams = inst.get("beparams")
    if isinstance(beparams, dict) and "maxmem" in beparams:
        inst["beparams"] = {**beparams, "memory": beparams["maxmem"]}
    return inst


def listing(req: Request, what: str, prefix: str, bulk_fields: list[str]) -> list:
    if query_flag(req, "bulk"):
        rows = query_items(what, bulk_fields)
        return [with_memory(r) for r in rows] if what == "instance" else rows
    key = "name" if what in ("group", "network") else "id"     # as Ganeti answers
    return [{key: row["name"], "uri": f"{prefix}/{row['name']}"} for row in query_items(what, ["name"])]


# --- root, cluster ---------------------------------------------------------------

class R_root(Resource):
    PATTERN = "/"
    DOC = "Nothing; Ganeti answers null here"

    def GET(self, req):
        return None


class R_version(Resource):
    PATTERN = "/version"
    DOC = "The RAPI version (2)"

    def GET(self, req):
        return 2


class R_2_info(Resource):
    PATTERN = "/2/info"
    DOC = "Cluster information (gnt-cluster info)"

    def GET(self, req):
        info = call("QueryClusterInfo")
        hypervisor = info.get("default_hypervisor")
        info.setdefault("hypervisor_type", hypervisor)
        info.setdefault("os_api_version", 20)
        info.setdefault("export_version", 0)
        info.setdefault("beparams", {"default": info.get("beparams", {})} if "beparams" in info else {})
        for key in ("hvparams", "os_hvp", "osparams", "nicparams", "ndparams", "diskparams", "ipolicy"):
            info.setdefault(key, {})
        return info


class R_2_features(Resource):
    PATTERN = "/2/features"
    DOC = "Features of this RAPI (Ganeti's feature strings)"

    def GET(self, req):
        return list(FEATURES)


class R_2_os(Resource):
    PATTERN = "/2/os"
    DOC = "Operating systems valid on every node, as name+variant"
    OPCODES = {"GET": "OpOsDiagnose"}

    def GET(self, req):
        entries = wait_job(submit([build_opcode(opcodes.OpOsDiagnose, req, {})]))
        names = []
        for entry in entries:
            if not entry.get("valid"):
                continue
            variants = entry.get("variants") or []
            names.extend(f"{entry['name']}+{v}" for v in variants) if variants else names.append(entry["name"])
        return names


class R_2_modify(Resource):
    PATTERN = "/2/modify"
    DOC = "Change cluster parameters (OpClusterSetParams)"
    OPCODES = {"PUT": "OpClusterSetParams"}

    def PUT(self, req):
        return submit([build_opcode(opcodes.OpClusterSetParams, req)])


class R_2_redist_config(Resource):
    PATTERN = "/2/redistribute-config"
    DOC = "Push the configuration to every node again"
    OPCODES = {"PUT": "OpClusterRedistConf"}

    def PUT(self, req):
        return submit([build_opcode(opcodes.OpClusterRedistConf, req, {})])


# --- tags (cluster, nodes, instances, groups, networks) -----------------------------

class TagsResource(Resource):
    """GET lists, PUT adds, DELETE removes; tags travel as ``?tag=a&tag=b``."""
    KIND = "cluster"
    OPCODES = {"PUT": "OpTagsSet", "DELETE": "OpTagsDel"}
    QUERY = {"PUT": (TAGS,), "DELETE": (TAGS,)}

    def _name(self, req) -> str | None:
        if self.KIND == "cluster":
            return None
        name = req.items[0]
        _check_name(name, self.KIND)
        return name

    def _tags(self, req) -> list[str]:
        tags = req.query.get("tag", [])
        if not tags:
            raise HttpBadRequest("give the tags as query arguments: ?tag=a&tag=b")
        return tags

    def GET(self, req):
        return call("QueryTags", self.KIND, self._name(req) or "")

    def PUT(self, req):
        return submit([build_opcode(opcodes.OpTagsSet, req, {}, kind=self.KIND, name=self._name(req),
                                    tags=self._tags(req))])

    def DELETE(self, req):
        return submit([build_opcode(opcodes.OpTagsDel, req, {}, kind=self.KIND, name=self._name(req),
                                    tags=self._tags(req))])


class R_2_tags(TagsResource):
    PATTERN = "/2/tags"
    DOC = "Cluster tags"


# --- jobs ------------------------------------------------------------------------------

def _job_id(req) -> int:
    text = req.items[0]
    if not text.isdigit() or len(text) > 18:
        raise HttpBadRequest(f"invalid job id {text[:40]!r}: expected a number")
    return int(text)


class R_2_jobs(Resource):
    PATTERN = "/2/jobs"
    DOC = "Jobs in the queue (bulk: their status)"
    QUERY = {"GET": (BULK,)}

    def GET(self, req):
        if query_flag(req, "bulk"):
            return [dict(zip(J_FIELDS_BULK, row)) for row in call("QueryJobs", None, J_FIELDS_BULK) if row]
        return [{"id": row[0], "uri": f"/2/jobs/{row[0]}"} for row in call("QueryJobs", None, ["id"]) if row]


class R_2_jobs_id(Resource):
    PATTERN = "/2/jobs/([^/]+)"
    DOC = "One job's status (GET) or cancel it (DELETE; dry-run: only say whether it could be)"
    QUERY = {"DELETE": (Param("dry-run", Bool(), False, "Only say whether the job could be cancelled"),)}

    def GET(self, req):
        rows = call("QueryJobs", [_job_id(req)], J_FIELDS)
        row = rows[0] if rows else None
        return dict(zip(J_FIELDS, row if row else [None] * len(J_FIELDS)))

    def DELETE(self, req):
        job_id = _job_id(req)
        if not query_flag(req, "dry-run"):
            return call("CancelJob", job_id)
        # the answers of the job processor's cancel, without cancelling
        rows = call("QueryJobs", [job_id], ["status"])
        status = rows[0][0] if rows and rows[0] else None
        if status in ("queued", "waiting"):
            return [True, f"Job {job_id} can be canceled (dry run: it was not)"]
        if status in ("running", "canceling"):
            return [False, f"Job {job_id} is {status}, it cannot be canceled"]
        return [False, f"Job {job_id} not found in queue"]


class R_2_jobs_id_wait(Resource):
    PATTERN = "/2/jobs/([^/]+)/wait"
    DOC = "Wait up to 10 s for a job to change (body: fields, previous_job_info, previous_log_serial)"
    WRITE_METHODS = frozenset({"GET"})

    def GET(self, req):
        job_id = _job_id(req)
        body = body_dict(req, allow_null=False)
        fields = body.get("fields")
        prev_info = body.get("previous_job_info")
        prev_serial = body.get("previous_log_serial")
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise HttpBadRequest("'fields' must be a list of job field names")
        if prev_info is not None and not isinstance(prev_info, list):
            raise HttpBadRequest("'previous_job_info' must be a list or null")
        if prev_serial is not None and (isinstance(prev_serial, bool) or not isinstance(prev_serial, int)):
            raise HttpBadRequest("'previous_log_serial' must be a number or null")
        unknown = [f for f in fields if f not in J_FIELDS + ["priority", "archived"]]
        if unknown:
            raise HttpBadRequest(f"unknown job field(s): {', '.join(unknown)}")
        change = call("WaitForJobChange", job_id, fields, prev_info, prev_serial, 10.0)
        if change is None:
            raise HttpNotFound(f"job {job_id} not found")
        if change == "nochange":
            return None
        return {"job_info": change["job_info"], "log_entries": change["log_entries"]}


# --- actions on named objects ------------------------------------------------------

# the objects actions name in their path: URL prefix and the opcode parameter that takes the name
OBJECTS = {"instance": ("/2/instances", "instance_name"), "node": ("/2/nodes", "node_name"),
           "group": ("/2/groups", "group_name"), "network": ("/2/networks", "network_name")}


class ObjectAction(Resource):
    """An action on one named object: the body's fields, the query arguments its opcode declares
    and the object's name make the opcode."""
    KIND = "instance"

    def _submit(self, req, body: dict | None = None, **extra) -> int:
        extra[OBJECTS[self.KIND][1]] = _named(req, self.KIND)
        return submit([build_opcode(self.opcode(req.method), req, body, **extra)])


def _action(name: str, path: str, method: str, opcode: str, doc: str, kind: str = "instance") -> type[ObjectAction]:
    """A resource class for ``PREFIX/NAME/path`` whose ``method`` submits ``opcode``."""
    def handler(self, req):
        return self._submit(req)
    return type(name, (ObjectAction,), {"PATTERN": f"{OBJECTS[kind][0]}/([^/]+)/{path}", "DOC": doc,
                                        "KIND": kind, "OPCODES": {method: opcode}, method: handler})


# --- nodes ---------------------------------------------------------------------------

class R_2_nodes(Resource):
    PATTERN = "/2/nodes"
    DOC = "Nodes (bulk: with their details)"
    QUERY = {"GET": (BULK,)}

    def GET(self, req):
        return listing(req, "node", "/2/nodes", N_FIELDS)


class R_2_nodes_name(Resource):
    PATTERN = "/2/nodes/([^/]+)"
    DOC = "One node's details"

    def GET(self, req):
        return one_item("node", "node", req.items[0], N_FIELDS)


class R_2_nodes_name_role(Resource):
    PATTERN = "/2/nodes/([^/]+)/role"
    DOC = "A node's role: master, candidate, regular, drained or offline (PUT sets it)"
    OPCODES = {"PUT": "OpNodeSetParams"}

    def GET(self, req):
        role = one_item("node", "node", req.items[0], ["role"])["role"]
        return NODE_ROLES.get(role, role)

    def PUT(self, req):
        name = _named(req, "node")
        role = req.body
        flags = {"regular": dict(master_candidate=False, offline=False, drained=False),
                 "master-candidate": dict(master_candidate=True), "candidate": dict(master_candidate=True),
                 "drained": dict(drained=True),
                 "offline": dict(offline=True)}
        if role == "master":
            raise HttpBadRequest("the master role cannot be set; run 'gnt-cluster master-failover' on the new master")
        if not isinstance(role, str) or role not in flags:
            raise HttpBadRequest(f"unknown node role {role!r} (regular, master-candidate, drained or offline)")
        return submit([build_opcode(opcodes.OpNodeSetParams, req, {}, node_name=name, **flags[role])])


R_2_nodes_name_modify = _action(
    "R_2_nodes_name_modify", "modify", "POST", "OpNodeSetParams", "Change a node (OpNodeSetParams)", kind="node")


class R_2_nodes_name_evacuate(Resource):
    PATTERN = "/2/nodes/([^/]+)/evacuate"
    DOC = ("Move instances off a node (body: mode primary-only|secondary-only|all, remote_node, iallocator,"
           " early_release)")
    MODES = {"primary-only": dict(primary_only=True), "secondary-only": dict(secondary_only=True), "all": {}}
    OPCODES = {"POST": "OpNodeEvacuate"}
    BODY = {"POST": (Param("mode", OneOf(*MODES), "all", "Ganeti's evacuation mode: primary-only,"
                           " secondary-only or all (the opcode's primary_only and secondary_only)"),)}

    def POST(self, req):
        body = body_dict(req)
        mode = body.pop("mode", "all")
        if mode not in self.MODES:
            raise HttpBadRequest(f"unknown evacuation mode {mode!r} (primary-only, secondary-only or all)")
        return submit([build_opcode(opcodes.OpNodeEvacuate, req, body, node_name=_named(req, "node"),
                                    **self.MODES[mode])])


class R_2_nodes_name_migrate(Resource):
    PATTERN = "/2/nodes/([^/]+)/migrate"
    DOC = "Live-migrate every primary instance off a node (body: mode, target_node, iallocator)"
    OPCODES = {"POST": "OpNodeMigrate"}
    BODY = {"POST": (Param("live", Bool(), None, "Ganeti's older form of mode: true is live, false non-live"),)}

    def POST(self, req):
        body = body_dict(req)
        if "live" in body:
            live = body.pop("live")
            if not isinstance(live, bool):
                raise HttpBadRequest("'live' must be a boolean")
            mode = "live" if live else "non-live"
            if body.setdefault("mode", mode) != mode:
                raise HttpBadRequest("give either 'live' or 'mode', not both")
        return submit([build_opcode(opcodes.OpNodeMigrate, req, body, node_name=_named(req, "node"))])


class R_2_nodes_name_tags(TagsResource):
    PATTERN = "/2/nodes/([^/]+)/tags"
    DOC = "A node's tags"
    KIND = "node"


# --- instances ------------------------------------------------------------------------

class R_2_instances(Resource):
    PATTERN = "/2/instances"
    DOC = "Instances (bulk: with details); POST creates one (body __version__ 1)"
    OPCODES = {"POST": "OpInstanceCreate"}
    QUERY = {"GET": (BULK,)}
    BODY = {"POST": (Param("__version__", Only(Int(), 1, "Ganeti's instance-create-reqv1"), REQUIRED,
                           "Version of the request data: 1"),)}

    def GET(self, req):
        return listing(req, "instance", "/2/instances", I_FIELDS)

    def POST(self, req):
        body = body_dict(req, allow_null=False)
        version = body.pop("__version__", None)
        if version != 1:
            raise HttpBadRequest("instance creation needs the request data version: '__version__': 1")
        return submit([build_opcode(opcodes.OpInstanceCreate, req, body)])


class R_2_instances_name(Resource):
    PATTERN = "/2/instances/([^/]+)"
    DOC = "One instance's details (GET) or remove it (DELETE; body: shutdown_timeout, ignore_failures)"
    OPCODES = {"DELETE": "OpInstanceRemove"}

    def GET(self, req):
        return with_memory(one_item("instance", "instance", req.items[0], I_FIELDS))

    def DELETE(self, req):
        # Ganeti's client sends its keyword arguments in the body
        return submit([build_opcode(opcodes.OpInstanceRemove, req, instance_name=_named(req, "instance"))])


class R_2_instances_name_info(Resource):
    PATTERN = "/2/instances/([^/]+)/info"
    DOC = "Submit a job gathering an instance's detailed information (?static=1: config only)"
    OPCODES = {"GET": "OpInstanceQueryData"}

    def GET(self, req):
        return submit([build_opcode(opcodes.OpInstanceQueryData, req, {}, instances=[_named(req, "instance")])])


R_2_instances_name_startup = _action(
    "R_2_instances_name_startup", "startup", "PUT", "OpInstanceStartup", "Start an instance")
R_2_instances_name_shutdown = _action(
    "R_2_instances_name_shutdown", "shutdown", "PUT", "OpInstanceShutdown", "Stop an instance (body: timeout)")
R_2_instances_name_activate_disks = _action(
    "R_2_instances_name_activate_disks", "activate-disks", "PUT", "OpInstanceActivateDisks",
    "Activate an instance's disks")
R_2_instances_name_deactivate_disks = _action(
    "R_2_instances_name_deactivate_disks", "deactivate-disks", "PUT", "OpInstanceDeactivateDisks",
    "Deactivate an instance's disks")
R_2_instances_name_recreate_disks = _action(
    "R_2_instances_name_recreate_disks", "recreate-disks", "POST", "OpInstanceRecreateDisks",
    "Recreate an instance's disks (body: disks, nodes)")

R_2_instances_name_replace_disks = _action(
    "R_2_instances_name_replace_disks", "replace-disks", "POST", "OpInstanceReplaceDisks",
    "Replace the disks of a mirrored instance (mode, disks, remote_node, iallocator; body or query)")
R_2_instances_name_migrate = _action(
    "R_2_instances_name_migrate", "migrate", "PUT", "OpInstanceMigrate",
    "Live-migrate an instance (body: mode, cleanup, target_node, allow_failover)")
R_2_instances_name_failover = _action(
    "R_2_instances_name_failover", "failover", "PUT", "OpInstanceFailover",
    "Fail an instance over (body: target_node, ignore_consistency)")
R_2_instances_name_rename = _action(
    "R_2_instances_name_rename", "rename", "PUT", "OpInstanceRename",
    "Rename an instance (body: new_name, name_check, ip_check)")
R_2_instances_name_modify = _action(
    "R_2_instances_name_modify", "modify", "PUT", "OpInstanceSetParams",
    "Change an instance (body: beparams, hvparams, disks, nics, ...)")
R_2_instances_name_move = _action(
    "R_2_instances_name_move", "move", "PUT", "OpInstanceMove",
    "Move a stopped or running instance's disks to another node (body: target_node, shutdown_timeout)")
R_2_instances_name_export = _action(
    "R_2_instances_name_export", "export", "PUT", "OpBackupExport",
    "Export an instance to a node (body: mode, destination, shutdown, remove_instance)")
R_2_instances_name_reboot = _action(
    "R_2_instances_name_reboot", "reboot", "POST", "OpInstanceReboot", "Reboot an instance (?type=soft|hard|full)")


class R_2_instances_name_reinstall(ObjectAction):
    PATTERN = "/2/instances/([^/]+)/reinstall"
    DOC = "Reinstall an instance's OS (body: os, start, osparams)"
    OPCODES = {"POST": "OpInstanceReinstall"}
    QUERY = {"POST": (Param("nostartup", Bool(), False, "Ganeti's older form of start=false"),)}
    BODY = {"POST": (Param("start", Bool(), True, "Start the instance after reinstalling it"),)}

    def POST(self, req):
        body = body_dict(req)
        start = body.pop("start", None)
        if start is not None and not isinstance(start, bool):
            raise HttpBadRequest("'start' must be a boolean")
        if "nostartup" in req.query:
            if start is not None and start == query_flag(req, "nostartup"):
                raise HttpBadRequest("'start' and ?nostartup= disagree")
            start = not query_flag(req, "nostartup")
        ops = [build_opcode(opcodes.OpInstanceShutdown, req, {}, instance_name=_named(req, "instance")),
               build_opcode(opcodes.OpInstanceReinstall, req, body, instance_name=_named(req, "instance"))]
        if start is not False:
            ops.append(build_opcode(opcodes.OpInstanceStartup, req, {}, instance_name=_named(req, "instance")))
        return submit(ops)


class R_2_instances_name_disk_grow(ObjectAction):
    PATTERN = "/2/instances/([^/]+)/disk/([^/]+)/grow"
    DOC = "Grow one disk (body: amount, absolute, wait_for_sync)"
    OPCODES = {"POST": "OpInstanceGrowDisk"}

    def POST(self, req):
        index = req.items[1]
        if not index.isdigit() or len(index) > 3:
            raise HttpBadRequest(f"invalid disk index {index[:20]!r}")
        return self._submit(req, body_dict(req), disk=int(index))


class R_2_instances_name_console(Resource):
    PATTERN = "/2/instances/([^/]+)/console"
    DOC = "How to reach a running instance's console"
    WRITE_METHODS = frozenset({"GET"})      # as Ganeti: a console is a way in, not a read
    OPCODES = {"GET": "OpInstanceConsole"}

    def GET(self, req):
        try:
            op = build_opcode(opcodes.OpInstanceConsole, req, {}, instance_name=_named(req, "instance"))
            return wait_job(submit([op]))
        except errors.OpPrereqError as err:
            if len(err.args) > 1 and err.args[1] == errors.ECode.WRONG_STATE.value:
                raise HttpServiceUnavailable(str(err.args[0])) from None
            raise


class R_2_instances_name_tags(TagsResource):
    PATTERN = "/2/instances/([^/]+)/tags"
    DOC = "An instance's tags"
    KIND = "instance"


# --- node groups ---------------------------------------------------------------------

class R_2_groups(Resource):
    PATTERN = "/2/groups"
    DOC = "Node groups (bulk: with details); POST adds one (body: name, alloc_policy)"
    OPCODES = {"POST": "OpGroupAdd"}
    QUERY = {"GET": (BULK,)}

    def GET(self, req):
        return listing(req, "group", "/2/groups", G_FIELDS)

    def POST(self, req):
        return submit([build_opcode(opcodes.OpGroupAdd, req)])


class R_2_groups_name(Resource):
    PATTERN = "/2/groups/([^/]+)"
    DOC = "One node group (GET) or remove it (DELETE)"
    OPCODES = {"DELETE": "OpGroupRemove"}

    def GET(self, req):
        return one_item("group", "group", req.items[0], G_FIELDS)

    def DELETE(self, req):
        return submit([build_opcode(opcodes.OpGroupRemove, req, {}, group_name=_named(req, "group"))])


R_2_groups_name_modify = _action(
    "R_2_groups_name_modify", "modify", "PUT", "OpGroupSetParams",
    "Change a node group (body: alloc_policy, ndparams, diskparams, ipolicy)", kind="group")
R_2_groups_name_rename = _action(
    "R_2_groups_name_rename", "rename", "PUT", "OpGroupRename", "Rename a node group (body: new_name)", kind="group")
R_2_groups_name_assign_nodes = _action(
    "R_2_groups_name_assign_nodes", "assign-nodes", "PUT", "OpGroupAssignNodes",
    "Move nodes into a node group (body: nodes, force)", kind="group")


class R_2_groups_name_tags(TagsResource):
    PATTERN = "/2/groups/([^/]+)/tags"
    DOC = "A node group's tags"
    KIND = "nodegroup"


# --- networks ------------------------------------------------------------------------

class R_2_networks(Resource):
    PATTERN = "/2/networks"
    DOC = "Networks (bulk: with details); POST adds one (body: network_name, network, gateway, ...)"
    OPCODES = {"POST": "OpNetworkAdd"}
    QUERY = {"GET": (BULK,)}

    def GET(self, req):
        return listing(req, "network", "/2/networks", NET_FIELDS)

    def POST(self, req):
        return submit([build_opcode(opcodes.OpNetworkAdd, req)])


class R_2_networks_name(Resource):
    PATTERN = "/2/networks/([^/]+)"
    DOC = "One network (GET) or remove it (DELETE)"
    OPCODES = {"DELETE": "OpNetworkRemove"}

    def GET(self, req):
        return one_item("network", "network", req.items[0], NET_FIELDS)

    def DELETE(self, req):
        return submit([build_opcode(opcodes.OpNetworkRemove, req, {}, network_name=_named(req, "network"))])


R_2_networks_name_modify = _action(
    "R_2_networks_name_modify", "modify", "PUT", "OpNetworkSetParams",
    "Change a network (body: gateway, mac_prefix, add_reserved_ips, remove_reserved_ips, ...)", kind="network")
R_2_networks_name_connect = _action(
    "R_2_networks_name_connect", "connect", "PUT", "OpNetworkConnect",
    "Connect a network to a node group (body: group_name, network_mode, network_link, network_vlan)", kind="network")
R_2_networks_name_disconnect = _action(
    "R_2_networks_name_disconnect", "disconnect", "PUT", "OpNetworkDisconnect",
    "Disconnect a network from a node group (body: group_name)", kind="network")


class R_2_networks_name_tags(TagsResource):
    PATTERN = "/2/networks/([^/]+)/tags"
    DOC = "A network's tags"
    KIND = "network"


# --- query2 ----------------------------------------------------------------------------

def _query_resource(req) -> str:
    what = req.items[0]
    if what not in QUERY_RESOURCES:
        raise HttpNotFound(f"unknown query resource {what[:40]!r} (known: {', '.join(QUERY_RESOURCES)})")
    return what


def _fields_arg(req, required: bool) -> list[str] | None:
    text = query_value(req, "fields")
    if text is None:
        if required:
            raise HttpBadRequest("missing 'fields' query argument")
        return None
    fields = [f for f in text.split(",") if f]
    if not fields:
        raise HttpBadRequest("'fields' names no field")
    return fields


class R_2_query(Resource):
    PATTERN = "/2/query/([^/]+)"
    DOC = "Query2: GET ?fields=a,b, or PUT a body {fields, qfilter}"
    WRITE_METHODS = frozenset()      # PUT only reads (Ganeti: PUT_ACCESS = GET_ACCESS)
    AUTH_METHODS = frozenset({"GET", "PUT"})      # as Ganeti: queries need a user
    QUERY = {"GET": (FIELDS,), "PUT": (FIELDS,)}

    def GET(self, req):
        return call("Query", _query_resource(req), _fields_arg(req, True), None)

    def PUT(self, req):
        what = _query_resource(req)
        body = body_dict(req, allow_null=False)
        unknown = sorted(set(body) - {"fields", "qfilter", "filter"})
        if unknown:
            raise HttpBadRequest(f"unknown query body field(s): {', '.join(unknown)}")
        fields = body.get("fields")
        if fields is None and "fields" in req.query:
            fields = _fields_arg(req, True)
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            raise HttpBadRequest("'fields' must be a non-empty list of field names")
        qfilter = body.get("qfilter", body.get("filter"))
        if qfilter is not None and not isinstance(qfilter, list):
            raise HttpBadRequest("'qfilter' must be a list (Ganeti's filter form) or null")
        return call("Query", what, fields, qfilter)


class R_2_query_fields(Resource):
    PATTERN = "/2/query/([^/]+)/fields"
    DOC = "Query2 field definitions (?fields=a,b)"
    AUTH_METHODS = frozenset({"GET"})
    QUERY = {"GET": (FIELDS,)}

    def GET(self, req):
        return call("QueryFields", _query_resource(req), _fields_arg(req, False))


def resources() -> list[type[Resource]]:
    """Every resource class defined here (the connector builds its URL map from them)."""
    return [obj for obj in globals().values()
            if isinstance(obj, type) and issubclass(obj, Resource) and obj.PATTERN]


def opcode_for(resource: type[Resource], method: str) -> str | None:
    """The opcode a mutating method submits (a GET's job, if any, only reads)."""
    return None if method == "GET" else resource.OPCODES.get(method)
