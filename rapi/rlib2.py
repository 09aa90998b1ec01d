"""RAPI v2 resources: Ganeti's URLs, bodies and replies, each mapped onto an opcode or a query.

Every mutating call submits one job and answers its id (a JSON number). Body
fields are the opcode's parameters, by their names or Ganeti's (``Param.rapi``),
and query arguments the ones its parameters declare (``Param.query``), both read
by baserlib.build_opcode; a resource declares the opcode of each method
(``OPCODES``) and the few query arguments and body fields it reads itself
(``QUERY``, ``BODY``). Anything else is a 400 and nothing is submitted.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Callable, ClassVar

from genet import errors, opcodes
from genet.opcodes import Param, REQUIRED
from genet.ptypes import Bool, Int, Json, ListOf, OneOf, Only, String, Tag
from genet.rapi.baserlib import (HttpBadRequest, HttpNotFound, HttpServiceUnavailable, Request, Resource,
                                 body_dict, build_opcode, call, query_flag, query_value, submit, wait_job)

FEATURES = ["instance-create-reqv1", "instance-reinstall-reqv1", "node-migrate-reqv1", "node-evac-res1"]
COMMON_FIELDS = ["ctime", "mtime", "uuid", "serial_no", "tags"]
I_FIELDS = ["name", "admin_state", "os", "pnode", "snodes", "disk_template", "nic.ips", "nic.macs",
            "nic.modes", "nic.uuids", "nic.names", "nic.links", "nic.networks", "nic.networks.names",
            "nic.bridges", "network_port", "disk.sizes", "disk.spindles", "disk_usage", "disk.uuids",
            "disk.names", "beparams", "hvparams", "oper_state", "oper_ram", "oper_vcpus", "status",
            "custom_hvparams", "custom_beparams", "custom_nicparams", "custom_osparams"] + COMMON_FIELDS
N_FIELDS = ["name", "offline", "master_candidate", "drained", "maintenance", "dtotal", "dfree", "sptotal", "spfree",
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
QUERY_RESOURCES = ("instance", "node", "group", "network", "job", "cluster", "export", "filter", "lock")

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


@dataclass(frozen=True)
class Kind:
    """A kind of named object Ganeti's RAPI serves under ``prefix`` (/2/instances...)."""
    name: str                    # the query resource, also what messages call one
    prefix: str
    param: str                   # the opcode parameter that takes its name
    fields: list[str]            # what a bulk listing and GET PREFIX/NAME show
    tag_kind: str                # OpTagsSet's kind
    list_key: str = "id"         # the name's key in a plain listing (Ganeti: "name" for groups, networks)
    show: Callable[[dict], dict] = lambda row: row     # what the RAPI adds to the query's row


INSTANCE = Kind("instance", "/2/instances", "instance_name", I_FIELDS, "instance", show=with_memory)
NODE = Kind("node", "/2/nodes", "node_name", N_FIELDS, "node")
GROUP = Kind("group", "/2/groups", "group_name", G_FIELDS, "nodegroup", list_key="name")
NETWORK = Kind("network", "/2/networks", "network_name", NET_FIELDS, "network", list_key="name")


def one_item(kind: Kind, name: str, fields: list[str] | None = None) -> dict:
    _check_name(name, kind.name)
    found = query_items(kind.name, fields or kind.fields, [name])
    if not found:
        raise HttpNotFound(f"{kind.name} '{name}' not known")
    return found[0]


def listing(req: Request, kind: Kind) -> list:
    if query_flag(req, "bulk"):
        return [kind.show(row) for row in query_items(kind.name, kind.fields)]
    return [{kind.list_key: row["name"], "uri": f"{kind.prefix}/{row['name']}"}
            for row in query_items(kind.name, ["name"])]


# --- root, cluster ---------------------------------------------------------------

class R_root(Resource):
    PATTERN = "/"
    DOC = "Nothing; Ganeti answers null here"

    def GET(self, req):
        return None


class R_2(R_root):
    PATTERN = "/2"
    DOC = "Nothing; Ganeti answers null here too"


class R_version(Resource):
    PATTERN = "/version"
    DOC = "The RAPI version (2)"

    def GET(self, req):
        return 2


class R_2_info(Resource):
    PATTERN = "/2/info"
    DOC = "Cluster information (gnt-cluster info)"

    def GET(self, req):
        return call("QueryClusterInfo")


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
            if not entry.get("valid") or entry.get("hidden") or entry.get("blacklisted"):   # as gnt-os list
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
    TAG_KIND = "cluster"
    OPCODES = {"PUT": "OpTagsSet", "DELETE": "OpTagsDel"}
    QUERY = {"PUT": (TAGS,), "DELETE": (TAGS,)}

    def _name(self, req) -> str | None:
        if self.TAG_KIND == "cluster":
            return None
        name = req.items[0]
        _check_name(name, self.TAG_KIND)
        return name

    def _tags(self, req) -> list[str]:
        tags = req.query.get("tag", [])
        if not tags:
            raise HttpBadRequest("give the tags as query arguments: ?tag=a&tag=b")
        return tags

    def GET(self, req):
        return call("QueryTags", self.TAG_KIND, self._name(req) or "")

    def PUT(self, req):
        return submit([build_opcode(opcodes.OpTagsSet, req, {}, kind=self.TAG_KIND, name=self._name(req),
                                    tags=self._tags(req))])

    def DELETE(self, req):
        return submit([build_opcode(opcodes.OpTagsDel, req, {}, kind=self.TAG_KIND, name=self._name(req),
                                    tags=self._tags(req))])


class R_2_tags(TagsResource):
    PATTERN = "/2/tags"
    DOC = "Cluster tags"


# --- jobs ------------------------------------------------------------------------------

def _path_number(text: str, digits: int, invalid: str) -> int:
    """A number the path gives (a job id, a disk index); anything else is a 400 saying ``invalid``."""
    if not text.isdigit() or len(text) > digits:
        raise HttpBadRequest(invalid)
    return int(text)


def _job_id(req) -> int:
    return _path_number(req.items[0], 18, f"invalid job id {req.items[0][:40]!r}: expected a number")


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
    BODY = {"GET": (Param("fields", ListOf(String()), REQUIRED, "The job fields to answer"),
                    Param("previous_job_info", ListOf(Json()), None, "Their values as last seen (null: none yet)"),
                    Param("previous_log_serial", Int(0), None, "The serial of the last log entry seen"))}

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


# --- instances, nodes, groups, networks -----------------------------------------------
#
# Each kind of object has Ganeti's resources: PREFIX (GET lists, POST may create one), PREFIX/NAME
# (GET shows it, DELETE may remove it), PREFIX/NAME/tags and actions PREFIX/NAME/ACTION whose method
# submits one opcode. serve() makes them from one declaration a kind; the few resources that read
# more than the opcode's schema are classes below.

_MADE: list[type[Resource]] = []        # the classes serve() made


class OfKind(Resource):
    """A resource of one kind of object, declared ``class R(Base, kind=KIND, path=PATH)``: its URL
    is the kind's prefix followed by PATH ("", "/([^/]+)", "/([^/]+)/migrate"...)."""
    KIND: ClassVar[Kind]

    def __init_subclass__(cls, kind: Kind | None = None, path: str = "", **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.KIND, cls.PATTERN = kind, kind.prefix + path


def _make(base: type[Resource], doc: str, kind: Kind | None = None, path: str = "", **attrs) -> type[Resource]:
    """A resource class named as Ganeti names it after its URL (/2/nodes/([^/]+)/tags: R_2_nodes_name_tags)."""
    cls = type("R", (base,), {"__module__": __name__, "DOC": doc, **attrs},
               **({"kind": kind, "path": path} if kind else {}))
    cls.__name__ = cls.__qualname__ = "R" + cls.PATTERN.replace("/([^/]+)", "/name").replace("/", "_").replace("-", "_")
    _MADE.append(cls)
    return cls


class Collection(OfKind):
    """PREFIX: GET lists the objects, ``?bulk=1`` with their details."""
    QUERY = {"GET": (BULK,)}

    def GET(self, req):
        return listing(req, self.KIND)


class ObjectAction(OfKind):
    """A call on one named object: the body's fields, the query arguments its opcode declares
    and the object's name make the opcode."""

    def _opcode(self, req, body: dict | None = None, opclass: type[opcodes.OpCode] | None = None,
                **extra) -> opcodes.OpCode:
        """The method's opcode (or ``opclass``) for the object the path names."""
        extra[self.KIND.param] = _named(req, self.KIND.name)
        return build_opcode(opclass or self.opcode(req.method), req, body, **extra)

    def _submit(self, req, body: dict | None = None, **extra) -> int:
        return submit([self._opcode(req, body, **extra)])


class OneObject(ObjectAction):
    """PREFIX/NAME: GET shows the object."""

    def GET(self, req):
        return self.KIND.show(one_item(self.KIND, req.items[0]))


def _create(self, req):
    return submit([build_opcode(self.opcode(req.method), req)])


def _act(self, req):
    return self._submit(req)


def _remove_without_body(self, req):
    return self._submit(req, {})


def _actions(table: str) -> list[tuple[str, str, str, str]]:
    """The rows of an action table: ``ACTION METHOD OPCODE DOC``, a more indented line continuing
    the doc above it."""
    rows: list[list[str]] = []
    for line in textwrap.dedent(table).strip("\n").splitlines():
        if line[:1].isspace():
            rows[-1][3] += " " + line.strip()
        else:
            action, method, opcode, doc = line.split(None, 3)
            if method not in ("PUT", "POST") or not hasattr(opcodes, opcode):
                raise ValueError(f"action row {line!r}: no such method or opcode")
            rows.append([action, method, opcode, doc])
    return [tuple(row) for row in rows]


def serve(kind: Kind, *, listed: str | None, create: str | None = None, one: str, remove: str | None = None,
          remove_reads_body: bool = False, tags: str, actions: str) -> None:
    """Make a kind's resources: PREFIX (doc ``listed``; POST submits ``create``), PREFIX/NAME (doc
    ``one``; DELETE submits ``remove``, from the body where ``remove_reads_body``), PREFIX/NAME/tags
    and PREFIX/NAME/ACTION for each row of the ``actions`` table: its METHOD submits its OPCODE."""
    if listed is not None:
        _make(Collection, listed, kind, **({"OPCODES": {"POST": create}, "POST": _create} if create else {}))
    _make(OneObject, one, kind, "/([^/]+)",
          **({"OPCODES": {"DELETE": remove}, "DELETE": _act if remove_reads_body else _remove_without_body}
             if remove else {}))
    _make(TagsResource, tags, PATTERN=f"{kind.prefix}/([^/]+)/tags", TAG_KIND=kind.tag_kind)
    for action, method, opcode, doc in _actions(actions):
        _make(ObjectAction, doc, kind, f"/([^/]+)/{action}", OPCODES={method: opcode}, **{method: _act})


# ACTION           METHOD  OPCODE                     DOC (the summary the OpenAPI document shows)

serve(NODE, listed="Nodes (bulk: with their details)", one="One node's details", tags="A node's tags", actions="""
    modify            POST  OpNodeSetParams            Change a node (OpNodeSetParams)
    powercycle        POST  OpNodePowercycle           Hard-restart a node from its own node daemon
                                                       (?force=1 for the master)
""")

serve(INSTANCE, listed=None,      # R_2_instances: creating one takes a request version
      one="One instance's details (GET) or remove it (DELETE; body: shutdown_timeout, ignore_failures)",
      remove="OpInstanceRemove", remove_reads_body=True,       # Ganeti's client sends its keyword arguments there
      tags="An instance's tags", actions="""
    startup           PUT   OpInstanceStartup          Start an instance
    shutdown          PUT   OpInstanceShutdown         Stop an instance (body: timeout)
    activate-disks    PUT   OpInstanceActivateDisks    Activate an instance's disks
    deactivate-disks  PUT   OpInstanceDeactivateDisks  Deactivate an instance's disks
    recreate-disks    POST  OpInstanceRecreateDisks    Recreate an instance's disks (body: disks, nodes)
    replace-disks     POST  OpInstanceReplaceDisks     Replace the disks of a mirrored instance
                                                       (mode, disks, remote_node, iallocator; body or query)
    migrate           PUT   OpInstanceMigrate          Live-migrate an instance
                                                       (body: mode, cleanup, target_node, allow_failover)
    failover          PUT   OpInstanceFailover         Fail an instance over (body: target_node, ignore_consistency)
    rename            PUT   OpInstanceRename           Rename an instance (body: new_name, name_check, ip_check)
    modify            PUT   OpInstanceSetParams        Change an instance (body: beparams, hvparams, disks, nics, ...)
    move              PUT   OpInstanceMove             Move a stopped or running instance's disks to another node
                                                       (body: target_node, shutdown_timeout)
    prepare-export    PUT   OpBackupPrepare            Prepare a remote export (?mode=local|remote): for remote,
                                                       the domain's handshake, the transfer key's name, its
                                                       signed certificate
    export            PUT   OpBackupExport             Export an instance to a node
                                                       (body: mode, destination, shutdown, remove_instance)
    reboot            POST  OpInstanceReboot           Reboot an instance (?type=soft|hard|full)
    change-group      PUT   OpInstanceChangeGroup      Move an instance to another node group
                                                       (body: target_groups, iallocator, early_release)
""")

serve(GROUP, listed="Node groups (bulk: with details); POST adds one (body: name, alloc_policy)", create="OpGroupAdd",
      one="One node group (GET) or remove it (DELETE)", remove="OpGroupRemove", tags="A node group's tags", actions="""
    modify            PUT   OpGroupSetParams           Change a node group
                                                       (body: alloc_policy, ndparams, diskparams, ipolicy)
    rename            PUT   OpGroupRename              Rename a node group (body: new_name)
    assign-nodes      PUT   OpGroupAssignNodes         Move nodes into a node group (body: nodes, force)
    evacuate          PUT   OpGroupEvacuate            Move every instance off a node group
                                                       (body: target_groups, iallocator, early_release, sequential)
""")

serve(NETWORK, listed="Networks (bulk: with details); POST adds one (body: network_name, network, gateway, ...)",
      create="OpNetworkAdd", one="One network (GET) or remove it (DELETE)", remove="OpNetworkRemove",
      tags="A network's tags", actions="""
    modify            PUT   OpNetworkSetParams         Change a network (body: gateway, mac_prefix,
                                                       add_reserved_ips, remove_reserved_ips, ...)
    connect           PUT   OpNetworkConnect           Connect a network to a node group
                                                       (body: group_name, network_mode, network_link, network_vlan)
    disconnect        PUT   OpNetworkDisconnect        Disconnect a network from a node group (body: group_name)
    rename            PUT   OpNetworkRename            Rename a network (body: new_name)
""")


# --- what reads more than its opcode's schema --------------------------------------------

class R_2_nodes_name_role(Resource):
    PATTERN = "/2/nodes/([^/]+)/role"
    DOC = "A node's role: master, candidate, regular, drained or offline (PUT sets it)"
    OPCODES = {"PUT": "OpNodeSetParams"}

    def GET(self, req):
        role = one_item(NODE, req.items[0], ["role"])["role"]
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


class R_2_nodes_name_evacuate(ObjectAction, kind=NODE, path="/([^/]+)/evacuate"):
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
        return self._submit(req, body, **self.MODES[mode])


class R_2_nodes_name_migrate(ObjectAction, kind=NODE, path="/([^/]+)/migrate"):
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
        return self._submit(req, body)


class R_2_nodes_name_storage(ObjectAction, kind=NODE, path="/([^/]+)/storage"):
    DOC = ("A node's storage units (?storage_type=lvm-vg|lvm-pv|file|sharedfile&output_fields=name,size,...):"
           " the id of the job that lists them, as in Ganeti (which asks for write access, as the job locks)")
    WRITE_METHODS = frozenset({"GET", "PUT", "POST", "DELETE"})
    QUERY = {"GET": (Param("storage_type", String(), None, "Storage type (empty or absent: the default one)"),
                     Param("output_fields", String(), REQUIRED, "Fields, comma-separated: name,size,used,free,..."))}

    def GET(self, req):
        fields = query_value(req, "output_fields")
        if not fields:
            raise HttpBadRequest("Missing the required 'output_fields' parameter")
        op = build_opcode(opcodes.OpNodeQueryStorage, req, {}, nodes=[_named(req, "node")],
                          storage_type=query_value(req, "storage_type") or None, output_fields=fields.split(","))
        return submit([op])


class R_2_nodes_name_storage_modify(ObjectAction, kind=NODE, path="/([^/]+)/storage/modify"):
    DOC = "Change a storage unit of a node (?storage_type=lvm-pv&name=UNIT&allocatable=0|1)"
    OPCODES = {"PUT": "OpNodeModifyStorage"}
    QUERY = {"PUT": (Param("allocatable", Bool(), None, "Whether new volumes may take space from the unit"),)}

    def PUT(self, req):
        changes = {"allocatable": query_flag(req, "allocatable", True)} if "allocatable" in req.query else {}
        return self._submit(req, {}, changes=changes)


class R_2_nodes_name_storage_repair(ObjectAction, kind=NODE, path="/([^/]+)/storage/repair"):
    DOC = "Repair a storage unit of a node (?storage_type=lvm-vg&name=UNIT): vgreduce --removemissing"
    OPCODES = {"PUT": "OpRepairNodeStorage"}

    def PUT(self, req):
        return self._submit(req)


class R_2_instances(Collection, kind=INSTANCE):
    DOC = "Instances (bulk: with details); POST creates one (body __version__ 1)"
    OPCODES = {"POST": "OpInstanceCreate"}
    BODY = {"POST": (Param("__version__", Only(Int(), 1, "Ganeti's instance-create-reqv1"), REQUIRED,
                           "Version of the request data: 1"),)}

    def POST(self, req):
        body = body_dict(req, allow_null=False)
        version = body.pop("__version__", None)
        if version != 1:
            raise HttpBadRequest("instance creation needs the request data version: '__version__': 1")
        return submit([build_opcode(opcodes.OpInstanceCreate, req, body)])


class R_2_instances_multi_alloc(Resource):
    PATTERN = "/2/instances-multi-alloc"
    DOC = ("Create several instances, their nodes chosen together (body: instances, each a creation's"
           " parameters as POST /2/instances takes them, and iallocator): one job per instance")
    OPCODES = {"POST": "OpInstanceMultiAlloc"}

    def POST(self, req):
        body = body_dict(req, allow_null=False)
        if not isinstance(body.get("instances"), list):
            raise HttpBadRequest("Request is missing required 'instances' field in body")
        # each instance's fields under their opcode names (Ganeti's RAPI spells some otherwise: name, os)
        renamed = {p.rapi: p.name for p in opcodes.OpInstanceCreate.all_params() if p.rapi}
        body["instances"] = [{renamed.get(key, key): value for key, value in inst.items()}
                             if isinstance(inst, dict) else inst for inst in body["instances"]]
        return submit([build_opcode(opcodes.OpInstanceMultiAlloc, req, body)])


class R_2_instances_name_info(Resource):
    PATTERN = "/2/instances/([^/]+)/info"
    DOC = "Submit a job gathering an instance's detailed information (?static=1: config only)"
    OPCODES = {"GET": "OpInstanceQueryData"}

    def GET(self, req):
        return submit([build_opcode(opcodes.OpInstanceQueryData, req, {}, instances=[_named(req, "instance")])])


class R_2_instances_name_reinstall(ObjectAction, kind=INSTANCE, path="/([^/]+)/reinstall"):
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
        ops = [self._opcode(req, {}, opcodes.OpInstanceShutdown), self._opcode(req, body)]
        if start is not False:
            ops.append(self._opcode(req, {}, opcodes.OpInstanceStartup))
        return submit(ops)


class R_2_instances_name_disk_grow(ObjectAction, kind=INSTANCE, path="/([^/]+)/disk/([^/]+)/grow"):
    DOC = "Grow one disk (body: amount, absolute, wait_for_sync)"
    OPCODES = {"POST": "OpInstanceGrowDisk"}

    def POST(self, req):
        disk = _path_number(req.items[1], 3, f"invalid disk index {req.items[1][:20]!r}")
        return self._submit(req, body_dict(req), disk=disk)


class R_2_instances_name_console(ObjectAction, kind=INSTANCE, path="/([^/]+)/console"):
    DOC = "How to reach a running instance's console"
    WRITE_METHODS = frozenset({"GET"})      # as Ganeti: a console is a way in, not a read
    OPCODES = {"GET": "OpInstanceConsole"}

    def GET(self, req):
        try:
            return wait_job(submit([self._opcode(req, {})]))
        except errors.OpPrereqError as err:
            if len(err.args) > 1 and err.args[1] == errors.ECode.WRONG_STATE.value:
                raise HttpServiceUnavailable(str(err.args[0])) from None
            raise


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
    BODY = {"PUT": (Param("fields", ListOf(String()), None, "The fields (or ?fields=a,b)"),
                    Param("qfilter", ListOf(Json()), None, "A filter in Ganeti's list form"),
                    Param("filter", ListOf(Json()), None, "The older name of qfilter (Ganeti's client sends both)"))}

    def GET(self, req):
        return call("Query", _query_resource(req), _fields_arg(req, True), None)

    def PUT(self, req):
        what = _query_resource(req)
        body = body_dict(req, allow_null=False)
        unknown = sorted(set(body) - {p.name for p in self.BODY["PUT"]})
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


# --- job filter rules: rapi/filters.py (here so that resources() finds them) -------------

from genet.rapi.filters import R_2_filters, R_2_filters_uuid  # noqa: E402,F401


def resources() -> list[type[Resource]]:
    """Every resource class defined or made here (the connector builds its URL map from them)."""
    return [obj for obj in globals().values()
            if isinstance(obj, type) and issubclass(obj, Resource) and obj.PATTERN and obj not in _MADE] + _MADE


def opcode_for(resource: type[Resource], method: str) -> str | None:
    """The opcode a mutating method submits (a GET's job, if any, only reads)."""
    return None if method == "GET" else resource.OPCODES.get(method)
