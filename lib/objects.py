"""The typed objects of the configuration: Cluster, Node, NodeGroup, Instance, Disk, NIC, Network,
Filter (a job filter rule).

Each object is a dict whose fields are declared here with their types and defaults and read as
attributes (``inst.disk_template``). Being a dict, an object is its own JSON form: the config
file, the replicated changes and the RPC carry it without a conversion pass, which matters at
10,000 instances. ``from_wire`` is the boundary: it checks every declared field, fills the fields
an older config lacks with their defaults and makes the nested objects typed too. Keys not
declared are kept as they are (a newer genet's fields survive an older one's rewrite).
"""
from __future__ import annotations

import copy
from typing import Any, Callable, ClassVar

from genet import errors
from genet.compression import DEFAULT_TOOLS as DEFAULT_COMPRESSION_TOOLS

REQUIRED = object()


class Field:
    """A declared field: its kind (a type, a tuple of types, or a conversion), its default."""

    def __init__(self, kind: Any, default: Any = REQUIRED, nullable: bool = False):
        self.kind, self.default, self.nullable = kind, default, nullable
        self.name = ""

    def missing(self, where: str) -> Any:
        if self.default is REQUIRED:
            raise errors.ConfigurationError(f"{where}: field {self.name!r} is missing")
        return self.default() if callable(self.default) else copy.deepcopy(self.default)

    def convert(self, value: Any, where: str) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(self.kind, Conversion):
            return self.kind(value, f"{where}.{self.name}")
        if not isinstance(value, self.kind) or (isinstance(value, bool) and bool not in _as_tuple(self.kind)):
            raise errors.ConfigurationError(
                f"{where}: field {self.name!r} must be {_kind_name(self.kind)}, not {type(value).__name__}")
        return value


class Conversion:
    """A field kind that builds typed values: an object, a list or a mapping of objects.
    ``wrap`` builds them without checks, for copies of values checked already."""

    def __init__(self, name: str, convert: Callable[[Any, str], Any], wrap: Callable[[Any], Any]):
        self.name, self._convert, self.wrap = name, convert, wrap

    def __call__(self, value: Any, where: str) -> Any:
        return self._convert(value, where)


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind) if not (k is int and float in _as_tuple(kind)))


NUMBER = (float, int)


class ConfigObject(dict):
    """A dict with declared, typed fields reachable as attributes."""

    FIELDS: ClassVar[dict[str, Field]] = {}
    NESTED: ClassVar[dict[str, Conversion]] = {}      # the fields that hold objects

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fields = dict(cls.FIELDS)
        for name, value in list(vars(cls).items()):
            if isinstance(value, Field):
                value.name = name
                fields[name] = value
                setattr(cls, name, _attribute(name, value.default is None))
        cls.FIELDS = fields
        cls.NESTED = {name: f.kind for name, f in fields.items() if isinstance(f.kind, Conversion)}

    @classmethod
    def from_wire(cls, value: Any, where: str | None = None):
        """``value`` (a dict from JSON, or an object) as a checked ``cls``, missing fields filled."""
        where = where or cls.__name__
        if not isinstance(value, dict):
            raise errors.ConfigurationError(f"{where} must be an object, not {type(value).__name__}")
        obj = cls(value)
        for name, field in cls.FIELDS.items():
            if name in obj:
                obj[name] = field.convert(obj[name], where)
            elif field.default is not None:         # a field whose default is None stays absent
                obj[name] = field.missing(where)
        return obj

    @classmethod
    def wrap(cls, value: dict):
        """``value`` as a ``cls`` without checks or defaults: a copy of a checked object."""
        obj = cls(value)
        for name, kind in cls.NESTED.items():
            if obj.get(name) is not None:
                obj[name] = kind.wrap(obj[name])
        return obj

    def replace(self, **changes: Any):
        """A shallow copy with ``changes`` (an instance as it will be: moved, renamed, converted)."""
        return type(self)({**self, **changes})

    @classmethod
    def field(cls) -> Conversion:
        return Conversion(cls.__name__, cls.from_wire, cls.wrap)

    @classmethod
    def list_field(cls) -> Conversion:
        def convert(value, where):
            if not isinstance(value, list):
                raise errors.ConfigurationError(f"{where} must be a list, not {type(value).__name__}")
            return [cls.from_wire(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return Conversion(f"list of {cls.__name__}", convert, lambda value: [cls.wrap(item) for item in value])

    @classmethod
    def map_field(cls) -> Conversion:
        def convert(value, where):
            if not isinstance(value, dict):
                raise errors.ConfigurationError(f"{where} must be an object, not {type(value).__name__}")
            return {key: cls.from_wire(item, f"{where}[{key!r}]") for key, item in value.items()}
        return Conversion(f"mapping of {cls.__name__}", convert,
                          lambda value: {key: cls.wrap(item) for key, item in value.items()})


def _attribute(name: str, optional: bool) -> property:
    def get(self):
        return self.get(name) if optional else self[name]

    def put(self, value):
        self[name] = value
    return property(get, put, doc=f"the {name!r} field")


class Timestamped(ConfigObject):
    ctime = Field(NUMBER, 0.0)
    mtime = Field(NUMBER, 0.0)


class Serialised(Timestamped):
    serial_no = Field(int, 1)
    tags = Field(list, list)


class Disk(ConfigObject):
    uuid = Field(str)
    size = Field(int)                       # MiB
    mode = Field(str, "rw")
    format = Field(str, "raw")
    name = Field(str, None, nullable=True)
    # where the template keeps the data: its own shape (a path, a VG/LV pair, a DRBD minor map);
    # absent until the template allocated it, a list for adopted volumes
    logical_id = Field((dict, list), None, nullable=True)


class NIC(ConfigObject):
    uuid = Field(str, None, nullable=True)
    mac = Field(str, None, nullable=True)
    mode = Field(str, "bridged")
    link = Field(str, "", nullable=True)
    ip = Field(str, None, nullable=True)
    vlan = Field(str, None, nullable=True)
    name = Field(str, None, nullable=True)
    network = Field(str, None, nullable=True)    # a Network's uuid


class Instance(Serialised):
    name = Field(str)
    uuid = Field(str)
    primary_node = Field(str)
    secondary_nodes = Field(list, list)
    os = Field(str, "")
    hypervisor = Field(str, "fake")
    disk_template = Field(str)
    admin_state = Field(str, "down")         # up | down | offline
    beparams = Field(dict, dict)
    hvparams = Field(dict, dict)
    osparams = Field(dict, dict)
    disks = Field(Disk.list_field(), list)
    nics = Field(NIC.list_field(), list)

    @property
    def all_nodes(self) -> list[str]:
        return [self.primary_node, *self.secondary_nodes]


class Node(Serialised):
    name = Field(str)
    uuid = Field(str)
    primary_ip = Field(str)
    secondary_ip = Field(str, None, nullable=True)
    master_candidate = Field(bool, False)
    master_capable = Field(bool, True)
    vm_capable = Field(bool, True)
    offline = Field(bool, False)
    drained = Field(bool, False)
    maintenance = Field(bool, False)         # emptied and drained for maintenance (gnt-node modify --maintenance)
    group = Field(str)                       # a NodeGroup's uuid
    ndparams = Field(dict, dict)             # its own; the group's and cluster's fill in (genet.params)
    powered = Field(bool, True)              # as the admin (or an out-of-band program) says
    hv_state = Field(dict, dict)             # Ganeti's static resource overrides, for allocators
    disk_state = Field(dict, dict)


class NodeGroup(Serialised):
    name = Field(str)
    uuid = Field(str)
    alloc_policy = Field(str, "preferred")
    ndparams = Field(dict, dict)
    diskparams = Field(dict, dict)
    ipolicy = Field(dict, dict)
    networks = Field(dict, dict)             # network uuid -> {"mode", "link", "vlan"}
    hv_state = Field(dict, dict)             # Ganeti's static resource overrides, for allocators
    disk_state = Field(dict, dict)


class Network(Serialised):
    name = Field(str)
    uuid = Field(str)
    network = Field(str)
    gateway = Field(str, None, nullable=True)
    network6 = Field(str, None, nullable=True)
    gateway6 = Field(str, None, nullable=True)
    mac_prefix = Field(str, None, nullable=True)
    reservations = Field(str, "")            # a bitmap of the pool, one character per address
    ext_reservations = Field(str, "")


class Filter(ConfigObject):
    """A job filter rule (Ganeti's FilterRule, gnt-filter(8)); genet.filters checks and applies it."""
    uuid = Field(str)
    watermark = Field(int)                   # the highest job id when the rule was added or replaced
    priority = Field(int, 0)                 # lower first
    predicates = Field(list, list)           # [["jobid" | "opcode" | "reason", filter], ...]
    action = Field((str, list), "CONTINUE")  # ACCEPT, PAUSE, REJECT, CONTINUE or ["RATE_LIMIT", n]
    reason_trail = Field(list, list)


class Cluster(Timestamped):
    cluster_name = Field(str)
    uuid = Field(str)
    master_node = Field(str)
    master_ip = Field(str)                   # the cluster name's address (genet.master_ip)
    master_netdev = Field(str, "")           # the device the master holds it on; "": none, no floating IP
    master_netmask = Field(int, 32)
    use_external_mip_script = Field(bool, False)
    master_epoch = Field(int, 0)             # raised by every master-failover (config.master_epoch)
    noded_port = Field(int, 1811)
    candidate_pool_size = Field(int, 10)
    max_running_jobs = Field(int, 20)
    enabled_hypervisors = Field(list, lambda: ["fake"])
    enabled_disk_templates = Field(list, list)       # none: every registered template (storage.units)
    modify_etc_hosts = Field(bool, False)
    mac_prefix = Field(str, "aa:00:00")
    # and the settings the disk templates read (DiskTemplate.SETTINGS, config.storage_params)
    # the defaults objects inherit (genet.params): backend, per hypervisor, per OS and hypervisor,
    # NIC, node, per disk template
    beparams = Field(dict, dict)
    hvparams = Field(dict, dict)
    os_hvp = Field(dict, dict)
    osparams = Field(dict, dict)             # per OS (name or name+variant)
    osparams_private = Field(dict, dict)     # per OS, shown redacted
    hidden_os = Field(list, list)            # not listed by gnt-os list and /2/os
    blacklisted_os = Field(list, list)       # not installed on new instances
    nicparams = Field(dict, dict)
    ndparams = Field(dict, dict)
    diskparams = Field(dict, dict)
    ipolicy = Field(dict, dict)
    tags = Field(list, list)
    compression_tools = Field(list, lambda: list(DEFAULT_COMPRESSION_TOOLS))   # genet.compression
    install_image = Field(str, "")                  # recorded: genet runs no helper VMs
    zeroing_image = Field(str, "")
    instance_communication_network = Field(str, "")
    enabled_user_shutdown = Field(bool, False)      # a guest's power-off is USER_down (query.instance)
    data_collectors = Field(dict, dict)             # {collector: {"active", "interval"}} as set (genet.collectors)
    auto_balance = Field(dict, dict)                # what was set of genet.autobalance.DEFAULTS
    ha = Field(dict, dict)                          # what was set of genet.ha.settings.DEFAULTS
    uid_pool = Field(list, list)             # [[lower, higher], ...] (genet.uidpool), for security_model=pool
    maintain_node_health = Field(bool, False)    # the watcher stops what runs on an offline node
    prealloc_wipe_disks = Field(bool, False)     # new disks (and grown parts) are zeroed first
    # used when neither nodes nor an allocator are given; Ganeti's default where htools is installed,
    # genet's built-in allocator answers to it (genet.cmdlib.allocator)
    default_iallocator = Field(str, "hail")
    default_iallocator_params = Field(dict, dict)
    reserved_lvs = Field(list, list)         # regular expressions of volumes verify does not report
    drbd_usermode_helper = Field(str, "")    # what verify expects the nodes' DRBD to call
    hv_state = Field(dict, dict)             # Ganeti's static resource state of the cluster
    disk_state = Field(dict, dict)


class DiskAccess(ConfigObject):
    """How a hypervisor opens one disk a storage backend prepared on its node: a file or block
    device (``path``) or an NBD export on a unix socket (``nbd_socket`` and ``export``)."""
    uuid = Field(str)
    size = Field(int)                       # MiB
    mode = Field(str, "rw")
    format = Field(str, "raw")
    path = Field(str, None, nullable=True)
    nbd_socket = Field(str, None, nullable=True)
    export = Field(str, None, nullable=True)

    @classmethod
    def of(cls, disk: dict, **where: Any) -> "DiskAccess":
        """The access to ``disk`` (its uuid, size and mode) at ``where`` (path=, or nbd_socket= and export=)."""
        return cls.from_wire({"uuid": disk["uuid"], "size": disk["size"], "mode": disk.get("mode", "rw"), **where})


class InstanceRuntime(Instance):
    """An instance as a hypervisor receives it: its disks resolved to how to open them."""
    disks = Field(DiskAccess.list_field(), list)


# the document's collections: name -> object class (a change names them, see config_journal)
COLLECTIONS: dict[str, type[ConfigObject]] = {
    "nodes": Node, "nodegroups": NodeGroup, "instances": Instance, "networks": Network, "filters": Filter}


class ConfigData(Timestamped):
    """The whole configuration document."""
    version = Field(int)
    serial_no = Field(int)
    cluster = Field(Cluster.field())
    nodes = Field(Node.map_field())
    nodegroups = Field(NodeGroup.map_field())
    instances = Field(Instance.map_field())
    networks = Field(Network.map_field(), dict)
    filters = Field(Filter.map_field(), dict)      # uuid -> Filter
