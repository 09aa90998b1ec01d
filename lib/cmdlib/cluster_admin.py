"""gnt-cluster's administration units: tag search, rename, disk size repair, certificate renewal."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from genet import errors, impexp, master_ip, opcodes, paths, ssl_utils
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.cluster import online_nodes
from genet.cmdlib.cluster_master_ip import floating, turn
from genet.cmdlib.common import storage_params
from genet.locking import ALL_SET, Level

_TAGGED = (("instances", "instances"), ("nodes", "nodes"), ("nodegroup", "nodegroups"), ("network", "networks"))


class LUTagsSearch(LogicalUnit):
    """Ganeti's paths: /cluster, /instances/NAME, /nodes/NAME, /nodegroup/NAME, /network/NAME."""
    OPCODE = opcodes.OpTagsSearch
    REQ_BGL = False

    def check_prereq(self):
        try:
            self.pattern = re.compile(self.op.pattern)
        except re.error as err:
            raise errors.OpPrereqError(f"Invalid search pattern '{self.op.pattern}': {err}",
                                       errors.ECode.INVAL) from None

    def exec(self):
        def search(data):
            targets = [("/cluster", data.cluster)]
            for prefix, collection in _TAGGED:
                targets += [(f"/{prefix}/{o['name']}", o) for o in data.get(collection, {}).values()]
            return [[path, tag] for path, obj in targets for tag in obj.get("tags", []) if self.pattern.search(tag)]
        return self.cfg.read(search)


class LUClusterRename(LogicalUnit):
    """The name in the config, and the master IP with it (the new name's address, Ganeti's): taken
    down on the master before, put up after when the cluster has a floating master IP; masterd
    writes both to every node's ssconf with the change."""
    OPCODE = opcodes.OpClusterRename
    HPATH, HTYPE = "cluster-rename", "CLUSTER"

    def hooks_env(self):
        return {"OP_TARGET": self.old_name, "NEW_NAME": self.op.name}

    def hooks_nodes(self):
        return [self.master_node()], self.cfg.read(lambda d: sorted(d.nodes))

    def check_prereq(self):
        data = self.cfg.snapshot()
        cluster = data.cluster
        self.old_name = cluster["cluster_name"]
        self.ip = master_ip.cluster_address(self.op.name, data.nodes[cluster["master_node"]]["primary_ip"])
        if self.op.name == cluster["cluster_name"] and self.ip == cluster["master_ip"]:
            raise errors.OpPrereqError("Neither the name nor the IP address of the cluster has changed",
                                       errors.ECode.INVAL)
        owned = {a for n in data.nodes.values() for a in (n["primary_ip"], n["secondary_ip"])}
        if self.ip != cluster["master_ip"] and self.ip not in owned and master_ip.taken_elsewhere(self.ip):
            raise errors.OpPrereqError(f"The given cluster IP address ({self.ip}) is reachable on the network",
                                       errors.ECode.NOTUNIQUE)

    def exec(self):
        old = self.cfg.snapshot()
        if floating(old):
            turn(self.rpc, old, master_ip.STOP).raise_on_error("Could not disable the master role")

        def change(data):
            data.cluster["cluster_name"] = self.op.name
            data.cluster["master_ip"] = self.ip
        self.cfg.update(change)
        new = self.cfg.snapshot()
        why = master_ip.problem(new)
        if why:
            self.feedback(f"The master IP is not activated: {why}")
        else:
            res = turn(self.rpc, new, master_ip.START)
            if res.failed:
                self.feedback(f"WARNING: Could not re-enable the master role on the master, please restart"
                              f" manually: {res.fail_msg}")
        return self.op.name


class LUClusterRepairDiskSizes(LogicalUnit):
    """Asks each primary node (blockdev_getdimensions) and records what it reports; a node that
    cannot answer is skipped with a warning, as Ganeti's."""
    OPCODE = opcodes.OpClusterRepairDiskSizes
    REQ_BGL = False

    def expand_names(self):
        self.needed_locks[Level.INSTANCE] = self.op.instances or ALL_SET
        self.lock_all_nodes()

    def check_prereq(self):
        data = self.cfg.snapshot()
        missing = sorted(set(self.op.instances) - set(data.instances))
        if missing:
            raise errors.OpPrereqError(f"instance(s) {', '.join(missing)} do not exist", errors.ECode.NOENT)
        names = self.op.instances or sorted(data.instances)
        self.wanted = [data.instances[n] for n in names if data.instances[n].get("disks")]

    def exec(self):
        changed, params = [], storage_params(self)
        for inst in self.wanted:
            name, node = inst["name"], inst["primary_node"]
            res = self.rpc.blockdev_getdimensions(node, name, inst["disk_template"], inst["disks"], params)
            if res.failed:
                self.feedback(f"WARNING: Failure in blockdev_getdimensions call to node {node}, ignoring")
                continue
            for index, (disk, size) in enumerate(zip(inst["disks"], res.payload)):
                if size is None:
                    self.feedback(f"WARNING: Disk {index} of instance {name} did not return size information,"
                                  " ignoring")
                    continue
                size >>= 20
                if size != disk["size"]:
                    self.feedback(f"Disk {index} of instance {name} has mismatched size, correcting:"
                                  f" recorded {disk['size']}, actual {size}")
                    self._record(name, index, size)
                    changed.append([name, index, "size", size])
        return changed

    def _record(self, name: str, index: int, size: int) -> None:
        def change(data):
            data.instances[name]["disks"][index]["size"] = size
        self.cfg.update(change)


class LUClusterRenewCrypto(LogicalUnit):
    """The cluster certificate in three rounds over every online node, so that any two nodes
    always share a trusted certificate (ssl_utils: stage, switch, retire); the master's own RPC
    client reads the files again after each round. The RAPI and SPICE certificates and the cluster
    domain secret are installed on every online node (any candidate may become master)."""
    OPCODE = opcodes.OpClusterRenewCrypto

    def check_prereq(self):
        op = self.op
        if op.new_rapi_certificate and op.rapi_certificate:
            raise errors.OpPrereqError("Only one of --new-rapi-certificate and --rapi-certificate may be"
                                       " specified.", errors.ECode.INVAL)
        if op.new_spice_certificate and (op.spice_certificate or op.spice_ca_certificate):
            raise errors.OpPrereqError("Only one of --new-spice-certificate and --spice-certificate may be"
                                       " specified.", errors.ECode.INVAL)
        if bool(op.spice_certificate) != bool(op.spice_ca_certificate):
            raise errors.OpPrereqError("Both --spice-certificate and --spice-ca-certificate must be given",
                                       errors.ECode.INVAL)
        if op.new_cluster_domain_secret and op.cluster_domain_secret is not None:
            raise errors.OpPrereqError("Only one of --new-cluster-domain-secret and --cluster-domain-secret may"
                                       " be specified.", errors.ECode.INVAL)
        self.secret = impexp.new_domain_secret() if op.new_cluster_domain_secret else \
            impexp.checked_domain_secret(op.cluster_domain_secret) if op.cluster_domain_secret is not None else None
        try:
            for pem, key in ((op.rapi_certificate, True), (op.spice_certificate, True),
                             (op.spice_ca_certificate, False)):
                if pem:
                    ssl_utils.check_pem(pem, need_key=key)
        except errors.CertificateError as err:
            raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
        data = self.cfg.snapshot()
        self.nodes = online_nodes(data)
        self.offline = sorted(n for n in data.nodes if n not in self.nodes)

    def exec(self):
        op = self.op
        if op.node_certificates:
            self._renew_cluster_certificate()
        rapi = _new_pem("genet-rapi") if op.new_rapi_certificate else op.rapi_certificate
        if rapi:
            self._install("rapi", rapi)
        spice, spice_ca = op.spice_certificate, op.spice_ca_certificate
        if op.new_spice_certificate:
            spice = _new_pem("genet-spice")
            spice_ca = spice[spice.index("-----BEGIN CERTIFICATE-----"):]     # self-signed: its own CA
        if spice:
            self._install("spice", spice)
            self._install("spice-ca", spice_ca)
        if self.secret is not None:
            self.feedback(f"Installing the cluster domain secret on {len(self.nodes)} node(s)")
            for node, res in sorted(self.rpc.upload_file.on(self.nodes, *impexp.upload(self.secret)).items()):
                if res.failed:
                    raise errors.OpExecError(f"cannot install the cluster domain secret on {node}: {res.fail_msg}")
        if self.offline:
            self.feedback(f"WARNING: offline node(s) {', '.join(self.offline)} were not updated; re-add them"
                          " (gnt-node add --readd) once they are back")
        return True

    def _install(self, kind: str, pem: str) -> None:
        self.feedback(f"Installing the {kind} certificate on {len(self.nodes)} node(s)")
        for node, res in sorted(self.rpc.certificate_install.on(self.nodes, kind, pem).items()):
            if res.failed:
                raise errors.OpExecError(f"cannot install the {kind} certificate on {node}: {res.fail_msg}")

    def _renew_cluster_certificate(self) -> None:
        name = self.cfg.read(lambda d: d.cluster["cluster_name"])
        pem = _new_pem(ssl_utils.CLUSTER_CN, name)
        self.feedback("Staging the new cluster certificate on every node (trusted beside the current one)")
        staged = self.rpc.certificate_stage.on(self.nodes, pem)
        failed = sorted(n for n, r in staged.items() if r.failed)
        if failed:      # nothing presents the new certificate yet: forget it and stop
            self.rpc.certificate_retire.on({n: self.nodes[n] for n in staged if n not in failed})
            raise errors.OpExecError(f"cannot stage the new cluster certificate on {', '.join(failed)}:"
                                     f" {staged[failed[0]].fail_msg}; nothing changed")
        fingerprint = next(iter(staged.values())).payload["fingerprint"]
        self.rpc.client.reload_certificate()
        self.feedback("Switching every node to the new cluster certificate (the old one stays trusted)")
        master = self.cfg.read(lambda d: d.cluster["master_node"])
        others = {n: a for n, a in self.nodes.items() if n != master}
        switched = dict(self.rpc.certificate_switch.on(others, fingerprint)) if others else {}
        if master in self.nodes:
            switched[master] = self.rpc.certificate_switch(master, fingerprint)
        self.rpc.client.reload_certificate()
        failed = sorted(n for n, r in switched.items() if r.failed)
        if failed:
            raise errors.OpExecError(f"node(s) {', '.join(failed)} did not switch to the new cluster certificate"
                                     f" ({switched[failed[0]].fail_msg}); both stay trusted everywhere: run"
                                     " renew-crypto again")
        self.feedback("Retiring the old cluster certificate")
        for node, res in sorted(self.rpc.certificate_retire.on(self.nodes).items()):
            if res.failed:
                self.feedback(f"WARNING: node {node} still trusts the old certificate: {res.fail_msg}")
        self.rpc.client.reload_certificate()


def _new_pem(common_name: str, organisation: str = "genet") -> str:
    """A new self-signed certificate with its key, as PEM text."""
    with tempfile.TemporaryDirectory(dir=paths.data_dir()) as folder:
        path = Path(folder) / "new.pem"
        ssl_utils.generate_cluster_cert(path, organisation, common_name=common_name)
        return path.read_text()
