"""Cluster-wide logical units: info, verify, modify, redistribute, destroy."""
from __future__ import annotations

import functools
import platform
import re
import time

from genet import __version__, autobalance, config, errors, master_ip, opcodes, params, ssl_utils, paths
from genet.cmdlib import cluster_features
from genet.ha import settings as ha_settings
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.cluster_ha import StoreChange
from genet.cmdlib.cluster_master_ip import MasterIpChange, floating
from genet.cmdlib.cluster_settings import checked_settings
from genet.cmdlib.cluster_verify_policy import verify_n_plus_one, verify_policies
from genet.cmdlib.cluster_verify_storage import verify_storage
from genet.cmdlib.common import changed_ipolicy, check_beparams, check_hvparams, check_os, checked_ipolicy
from genet.cmdlib.instance_policy import warn_of_new_violations
from genet.hooks_runner import HKR_FAIL
from genet.jobqueue import MAX_UNFINISHED
from genet.noded import PROTOCOL_VERSION
from genet.storage import base as storage
from genet.storage.units import enabled_templates

CERT_WARN_DAYS = 30


@functools.lru_cache(maxsize=1)
def _architecture() -> list[str]:
    """platform.architecture() may run file(1): once per masterd is enough."""
    return [platform.architecture()[0], platform.machine()]


class LUClusterQuery(LogicalUnit):
    """What `gnt-cluster info` and RAPI /2/info show: Ganeti's QueryClusterInfo, every key of it
    (what genet has not got says so with Ganeti's value for "none"), the parameter defaults
    filled in as they apply."""
    OPCODE = opcodes.OpClusterQuery
    REQ_BGL = False

    def exec(self):
        return self.cfg.read(cluster_info)


def cluster_info(data) -> dict:
    from genet.hypervisor.base import HYPERVISORS
    cluster = data.cluster
    enabled = cluster["enabled_hypervisors"]
    hvparams = {hv: params.filled_hvparams(data, {"hypervisor": hv, "os": ""}) for hv in enabled
                if hv in HYPERVISORS.names()}
    return {
        "name": cluster["cluster_name"], "uuid": cluster["uuid"],
        "master": cluster["master_node"], "master_ip": cluster["master_ip"],
        "master_netdev": cluster["master_netdev"], "master_netmask": cluster["master_netmask"],
        "use_external_mip_script": cluster["use_external_mip_script"],
        "architecture": _architecture(),
        "software_version": __version__, "protocol_version": PROTOCOL_VERSION,
        "config_version": data["version"], "os_api_version": 20, "export_version": 0,
        "serial_no": data.serial_no, "ctime": cluster["ctime"], "mtime": data["mtime"], "tags": cluster["tags"],
        "candidate_pool_size": cluster["candidate_pool_size"], "max_running_jobs": cluster["max_running_jobs"],
        "max_tracked_jobs": MAX_UNFINISHED, "noded_port": cluster["noded_port"],
        "enabled_hypervisors": enabled, "default_hypervisor": enabled[0], "hypervisor_type": enabled[0],
        "enabled_disk_templates": enabled_templates(cluster),
        "modify_etc_hosts": cluster["modify_etc_hosts"], "mac_prefix": cluster.get("mac_prefix", "aa:00:00"),
        **config.storage_params(data),
        # the defaults objects inherit, filled in (Ganeti groups beparams and nicparams under "default")
        "hvparams": hvparams, "os_hvp": cluster.os_hvp, "osparams": cluster.osparams,
        "osparams_private": {os_name: {key: "<redacted>" for key in values}
                             for os_name, values in cluster.osparams_private.items()},
        "beparams": {"default": {**config.DEFAULT_BEPARAMS, **params.normalised_beparams(cluster.beparams)}},
        "nicparams": {"default": params.nicparams(data)}, "ndparams": params.ndparams(data, {}, {}),
        "diskparams": params.diskparams(data), "ipolicy": params.ipolicy(data),
        "auto_balance": autobalance.settings(cluster.auto_balance),
        "ha": ha_settings.settings(cluster.ha), "master_epoch": config.master_epoch(data),
        # what genet does not have: Ganeti's values for "none"
        **{key: cluster[key] for key in ("default_iallocator", "default_iallocator_params", "maintain_node_health",
                                         "uid_pool", "reserved_lvs", "drbd_usermode_helper", "prealloc_wipe_disks")},
        "primary_ip_version": 4, "hidden_os": cluster.hidden_os, "blacklisted_os": cluster.blacklisted_os,
        "gluster_storage_dir": "",
        **{key: cluster[key] for key in ("install_image", "zeroing_image", "instance_communication_network",
                                         "compression_tools", "enabled_user_shutdown")},
        **cluster_features.collector_fields(cluster),
        "modify_ssh_setup": False, "ssh_key_type": "", "ssh_key_bits": 0,
        "node_count": len(data.nodes), "instance_count": len(data.instances),
    }


def online_nodes(data: dict) -> dict[str, str]:
    """The online nodes and their primary addresses: whom a cluster-wide RPC asks."""
    return {n["name"]: n["primary_ip"] for n in data.nodes.values() if not n["offline"]}


class EveryNodeLU(LogicalUnit):
    """An LU that asks every online node (verify, OS diagnose): it holds every node's lock,
    shared, so that none joins or leaves meanwhile."""
    REQ_BGL = False

    def expand_names(self):
        self.lock_all_nodes()


class LUClusterVerify(EveryNodeLU):
    """Check every node over TLS: reachability, versions, config serial, certs, clocks, ssconf;
    then the site's cluster-verify post hooks on those nodes, whose failures are verify errors."""
    OPCODE = opcodes.OpClusterVerify
    HPATH, HTYPE = "cluster-verify", "CLUSTER"

    def hooks_env(self):
        data = self.cfg.snapshot()
        return {"CLUSTER_TAGS": " ".join(data.cluster.get("tags", [])),
                **{f"NODE_TAGS_{name}": " ".join(data.nodes[name].get("tags", [])) for name in self.hooks_nodes()[1]}}

    def hooks_nodes(self):
        data = self.cfg.snapshot()
        group = self._group(data)
        return [], sorted(n for n in online_nodes(data) if group is None or data.nodes[n]["group"] == group)

    def hooks_result(self, results, result):
        """Ganeti's: each failed script (or node that could not run them) is a verify error."""
        if not results:
            return result
        self.feedback("* Hooks Results")
        for node, res in sorted(results.items()):
            if res.failed:
                self._error("ENODEHOOKS", "node", node, f"Communication failure in hooks execution: {res.fail_msg}")
                continue
            for script, status, output in res.payload:
                if status == HKR_FAIL:
                    self._error("ENODEHOOKS", "node", node, f"Script {script} failed, output:")
                    self.feedback(re.sub("^", "      ", output, flags=re.M))
        return {**result, "ok": not self.problems}

    def check_prereq(self):
        self._group(self.cfg.snapshot())

    def exec(self):
        data = self.cfg.snapshot()
        self.problems: list[list[str]] = []
        master = data.cluster["master_node"]
        own_cert = ssl_utils.cert_info(paths.cluster_cert())
        expected_ssconf = config.ssconf_values(data)
        online = online_nodes(data)
        group = self._group(data)
        if group is not None:     # that group's nodes and instances only, no cluster-wide check
            online = {n: a for n, a in online.items() if data.nodes[n]["group"] == group}
        if self.op.verify_clutter:
            self.feedback("* Not checking authorized_keys for clutter: genet keeps no SSH keys (its nodes"
                          " trust each other through the cluster certificate)")
        self.feedback(f"* Verifying {len(online)} online node(s)")
        started = time.time()
        results = self.rpc.node_info.on(online)
        rtt = time.time() - started
        if group is None and own_cert["not_after"] - time.time() < CERT_WARN_DAYS * 86400:
            self._error("ECLUSTERCERT", "cluster", data.cluster["cluster_name"],
                        "cluster certificate expires in less than %d days" % CERT_WARN_DAYS)
        for name in sorted(online):
            res = results[name]
            if res.failed:
                self._error("ENODENET", "node", name, f"cannot reach node over TLS: {res.fail_msg}")
                continue
            info = res.payload
            node = data.nodes[name]
            if info["name"] != name:
                self._error("ENODEHOSTNAME", "node", name, f"node calls itself {info['name']!r}")
            if info["protocol"] != PROTOCOL_VERSION or info["version"] != __version__:
                self._error("ENODEVERSION", "node", name,
                            f"version {info['version']} (protocol {info['protocol']}), "
                            f"master has {__version__} (protocol {PROTOCOL_VERSION})")
            if node["master_candidate"] and info["config_serial"] != data.serial_no:
                self._error("ENODECONFIG", "node", name,
                            f"config serial {info['config_serial']} differs from the master's {data['serial_no']}")
            if info["cert"]["fingerprint"] != own_cert["fingerprint"]:
                self._error("ENODECERT", "node", name, "node's certificate differs from the cluster certificate")
            skew = abs(info["time"] - (started + rtt / 2))
            if skew > self.op.max_clock_skew:
                self._error("ENODETIME", "node", name, f"clock skew of {skew:.1f}s (limit {self.op.max_clock_skew:.0f}s)")
            diff = sorted(k for k, v in expected_ssconf.items() if info["ssconf"].get(k) != v)
            if diff:
                self._error("ENODESSCONF", "node", name, f"ssconf differs from the config: {', '.join(diff)}")
            if name != master and info.get("masterd_pid"):
                self._error("ENODEMASTERD", "node", name, "a master daemon runs on a node that is not the master")
            if self.op.verbose:
                self.feedback(f"  - node {name}: checked (version {info['version']}, config serial"
                              f" {info['config_serial']}, clock skew {skew:.3f}s)")
        for node in sorted(data.nodes.values(), key=lambda n: n["name"]):
            if node["offline"] and (group is None or node["group"] == group):
                self.feedback(f"  - NOTICE: node {node['name']} is offline, not checked")
        reachable = {n: a for n, a in online.items() if not results[n].failed}
        self._verify_instances(data, reachable)
        self._verify_store(data, {n: results[n].payload for n in reachable})
        for subject, text in sorted(self.ctx.ha.alerts().items()):     # what instance HA could not do
            kind = "node" if subject in data.nodes else "instance"
            self._error("ENODEHA" if kind == "node" else "EINSTANCEHA", kind, subject, text)
        verify_policies(data, group, self._warning)
        verify_storage(self.rpc, data, reachable, self._error, self._warning)
        if "nplusone_mem" not in self.op.skip_checks:
            verify_n_plus_one(self.rpc, data, reachable, group, self.feedback, self._error)
        if group is not None:
            return {"ok": not self.problems, "errors": self.problems}
        if floating(data) and not master_ip.is_local(data.cluster["master_ip"], master_ip.run):
            self._error("ENODENET", "node", master, "the master node cannot reach the master IP (not configured?)")
        wanted = min(data.cluster["candidate_pool_size"],
                     sum(1 for n in data.nodes.values() if n["master_capable"] and not n["offline"]
                         and not n["drained"]))
        have = len(config.candidates(data))
        if have < wanted:
            self._error("ECLUSTERCFG", "cluster", data.cluster["cluster_name"],
                        f"only {have} master candidates, {wanted} wanted")
        return {"ok": not self.problems, "errors": self.problems}

    def _verify_store(self, data, infos: dict) -> None:
        """With automatic master failover on: every online candidate runs its member of the
        leadership store, and this master holds the lease."""
        if not ha_settings.settings(data.cluster.ha)["auto_master_failover"]:
            return
        for name, info in sorted(infos.items()):
            if data.nodes[name]["master_candidate"] and not info.get("etcd_pid"):
                self._error("ENODEHA", "node", name, "its member of the leadership store (etcd) does not run:"
                                                     " automatic master failover may lose its majority")
        if self.ctx.lease is None or not self.ctx.lease.holds():
            self._error("ECLUSTERCFG", "cluster", data.cluster["cluster_name"],
                        f"automatic master failover is on but {self.ctx.node_name} holds no master lease")

    def _group(self, data) -> str | None:
        """The UUID of the group --node-group names (None: the whole cluster)."""
        if self.op.group_name is None:
            return None
        for uuid, group in data.nodegroups.items():
            if group["name"] == self.op.group_name:
                return uuid
        raise errors.OpPrereqError(f"node group {self.op.group_name!r} does not exist", errors.ECode.NOENT)

    def _verify_instances(self, data: dict, reachable: dict[str, str]) -> None:
        """Every instance runs where the config says and nowhere else; nodes run nothing unknown."""
        hypervisors = data.cluster["enabled_hypervisors"]
        reports = self.rpc.instances_info.on(reachable, hypervisors) if reachable else {}
        running: dict[str, list[str]] = {}
        unknown = set()           # nodes whose instances are unknown: no conclusion about them
        for node, res in sorted(reports.items()):
            if res.failed:
                self._error("ENODEHV", "node", node, f"cannot list its instances: {res.fail_msg}")
                unknown.add(node)
                continue
            for name, info in sorted(res.payload.items()):
                if info.get("state") != "running":
                    continue
                running.setdefault(name, []).append(node)
                if name not in data.instances:
                    self._error("ENODEORPHANINSTANCE", "node", node, f"runs unknown instance {name}")
        for name, inst in sorted(data.instances.items()):
            primary = inst.primary_node
            where = running.get(name, [])
            if primary not in reachable or primary in unknown:      # (or in another group)
                continue              # reported as a node problem already
            if inst.admin_state == "up" and primary not in where:
                self._error("EINSTANCEDOWN", "instance", name, f"not running on its primary node {primary}")
            if inst.admin_state != "up" and primary in where:
                self._error("EINSTANCEUP", "instance", name, f"running on {primary} although it is marked down")
            for node in where:
                if node != primary:
                    self._error("EINSTANCEWRONGNODE", "instance", name,
                                f"running on {node}, which is not its primary node {primary}")

    def _warning(self, code: str, kind: str, name: str, message: str) -> None:
        """Ganeti's warnings: shown, but verify still passes."""
        if code in self.op.ignore_errors:
            return
        self.feedback(f"  - WARNING:{code}:{kind}:{name}:{message}" if self.op.error_codes
                      else f"  - WARNING: {kind} {name}: {message}")

    def _error(self, code: str, kind: str, name: str, message: str) -> None:
        if code in self.op.ignore_errors:
            return
        self.problems.append([code, kind, name, message])
        if self.op.error_codes:
            self.feedback(f"  - ERROR:{code}:{kind}:{name}:{message}")
        else:
            self.feedback(f"  - ERROR: {kind} {name}: {message}")


class LUClusterSetParams(LogicalUnit):
    OPCODE = opcodes.OpClusterSetParams
    HPATH, HTYPE = "cluster-modify", "CLUSTER"

    def hooks_env(self):
        return {"OP_TARGET": self.cfg.read(lambda d: d.cluster["cluster_name"]), "NEW_VG_NAME": self.op.vg_name}

    def hooks_nodes(self):
        return self.on_master()

    def check_prereq(self):
        op, data = self.op, self.cfg.snapshot()
        cluster = data.cluster
        self.values = {key: getattr(op, key) for key in ("candidate_pool_size", "max_running_jobs",
                                                         "modify_etc_hosts", "mac_prefix")
                       if getattr(op, key) is not None}
        # where the templates find their disks: not while instances have disks there
        current = config.storage_params(data)
        for setting, value in (("volume_group_name", op.vg_name), ("file_storage_dir", op.file_storage_dir),
                               ("shared_file_storage_dir", op.shared_file_storage_dir)):
            if value is None:
                continue
            using = sorted(name for name, inst in data.instances.items()
                           if setting in storage.TEMPLATES.cls(inst.disk_template).SETTINGS)
            if using and value != current[setting]:
                what = "the volume group" if setting == "volume_group_name" else setting.replace("_", " ")
                raise errors.OpPrereqError(f"cannot change {what} while instances have disks in it:"
                                           f" {', '.join(using)}", errors.ECode.WRONG_STATE)
            self.values[setting] = value
        self.master_ip = MasterIpChange(op, data)
        self.values.update(self.master_ip.values)
        if op.enabled_hypervisors is not None:
            self.values["enabled_hypervisors"] = self._enabled_hypervisors(data, op.enabled_hypervisors)
        if op.enabled_disk_templates is not None:
            self.values["enabled_disk_templates"] = self._enabled_templates(data, op.enabled_disk_templates)
        # the defaults instances, NICs and nodes inherit, each checked as it will apply
        if op.hvparams:
            hvparams = params.changed_per_name(cluster.hvparams, op.hvparams)
            for hv in op.hvparams:
                check_hvparams(hv, hvparams.get(hv, {}))
            self.values["hvparams"] = hvparams
        if op.beparams:
            beparams = params.changed(cluster.beparams, params.normalised_beparams(op.beparams))
            check_beparams({**config.DEFAULT_BEPARAMS, **beparams})
            self.values["beparams"] = beparams
        for key, merge in (("nicparams", params.changed), ("ndparams", params.changed),
                           ("diskparams", params.changed_per_name), ("osparams", params.changed_per_name),
                           ("osparams_private", params.changed_per_name)):
            if getattr(op, key):
                self.values[key] = merge(cluster[key], getattr(op, key))
        for os_name, os_params in {**(op.osparams or {}), **(op.osparams_private or {})}.items():
            # Ganeti checks an OS's parameters on the master node
            merged = {**self.values.get("osparams", cluster.osparams).get(os_name, {}),
                      **self.values.get("osparams_private", cluster.osparams_private).get(os_name, {})}
            check_os(self, cluster.master_node, os_name, merged, install=False)
        if op.os_hvp:
            os_hvp = {**cluster.os_hvp}
            for os_name, per_hv in op.os_hvp.items():
                os_hvp[os_name] = params.changed_per_name(cluster.os_hvp.get(os_name, {}), per_hv)
                for hv, hv_params in os_hvp[os_name].items():
                    check_hvparams(hv, hv_params)
                if not os_hvp[os_name]:         # every parameter reset: the OS has no entry left
                    del os_hvp[os_name]
            self.values["os_hvp"] = os_hvp
        if op.ipolicy:
            self.values["ipolicy"] = changed_ipolicy(cluster.ipolicy, params.ipolicy(data), op.ipolicy)
            after = data.replace(cluster=cluster.replace(ipolicy=self.values["ipolicy"]))
            checked_ipolicy(params.ipolicy(after))
            warn_of_new_violations(self, data, after)
        for key in ("hidden_os", "blacklisted_os"):
            if getattr(op, key):
                names = list(cluster[key])
                for action, os_name in getattr(op, key):
                    if action == "add" and os_name not in names:
                        names.append(os_name)
                    elif action == "remove" and os_name in names:
                        names.remove(os_name)
                self.values[key] = names
        self.values.update(checked_settings(self, data))
        self.values.update(cluster_features.checked(self, data))
        balancing = autobalance.changed(cluster.auto_balance, op)
        if balancing is not None:
            self.values["auto_balance"] = balancing
        voters = sorted(n.name for n in data.nodes.values() if n.master_candidate and not n.offline)
        ha = ha_settings.changed(cluster.ha, op, voters)
        if ha is not None:
            self.values["ha"] = ha
        self.store = StoreChange(self, data, ha)
        self.old_network = cluster.instance_communication_network

    @staticmethod
    def _enabled_hypervisors(data, wanted: list[str]) -> list[str]:
        """Ganeti's rules: at least one; none that an instance uses may go."""
        if not wanted:
            raise errors.OpPrereqError("at least one hypervisor must be enabled", errors.ECode.INVAL)
        using = sorted(f"{i.name} ({i.hypervisor})" for i in data.instances.values() if i.hypervisor not in wanted)
        if using:
            raise errors.OpPrereqError(f"hypervisors in use cannot be disabled; instances: {', '.join(using)}",
                                       errors.ECode.WRONG_STATE)
        return list(dict.fromkeys(wanted))

    @staticmethod
    def _enabled_templates(data, wanted: list[str]) -> list[str]:
        """As for hypervisors: at least one, none that an instance uses may go."""
        if not wanted:
            raise errors.OpPrereqError("at least one disk template must be enabled", errors.ECode.INVAL)
        using = sorted(f"{i.name} ({i.disk_template})" for i in data.instances.values()
                       if i.disk_template not in wanted)
        if using:
            raise errors.OpPrereqError(f"disk templates in use cannot be disabled; instances: {', '.join(using)}",
                                       errors.ECode.WRONG_STATE)
        return list(dict.fromkeys(wanted))

    def exec(self):
        def change(data):
            for key, value in self.values.items():
                data.cluster[key] = value
            data.cluster["mtime"] = time.time()
            return config.maintain_candidates(data)
        self.master_ip.before(self.rpc, self.feedback, self.op.force)
        self.store.before()
        promoted = self.cfg.update(change)
        self.store.after()
        self.master_ip.after(self.rpc, self.feedback)
        if self.op.max_running_jobs is not None:
            self.ctx.processor.set_workers(self.op.max_running_jobs)
        for name in promoted:
            self.feedback(f"Promoted node {name} to master candidate")
            self.ctx.sync_new_candidate(name)
        if self.op.instance_communication_network is not None:     # Ganeti's answer: the job it submitted
            return cluster_features.apply_communication_network(self, self.old_network, self.cfg.snapshot()) \
                or promoted
        return promoted


class LUClusterRedistConf(LogicalUnit):
    OPCODE = opcodes.OpClusterRedistConf

    def exec(self):
        self.ctx.redistribute(self.feedback)
        return True


class _PostHooksOnMaster(LogicalUnit):
    """An LU whose hooks Ganeti runs after it only, on the master, naming the cluster."""
    HTYPE = "CLUSTER"

    def hooks_env(self):
        return {"OP_TARGET": self.cfg.read(lambda d: d.cluster["cluster_name"])}

    def hooks_nodes(self):
        return [], [self.master_node()]


class LUClusterPostInit(_PostHooksOnMaster):
    """Nothing but Ganeti's cluster-init hooks, once the new master's daemons run."""
    OPCODE = opcodes.OpClusterPostInit
    HPATH = "cluster-init"

    def exec(self):
        return True


class LUClusterDestroy(_PostHooksOnMaster):
    """Refuses while other nodes or instances remain; the CLI then stops the daemons."""
    OPCODE = opcodes.OpClusterDestroy
    HPATH = "cluster-destroy"

    def check_prereq(self):
        data = self.cfg.snapshot()
        others = sorted(n for n in data.nodes if n != data.cluster["master_node"])
        if others:
            raise errors.OpPrereqError(f"cluster still has {len(others)} other node(s): {', '.join(others)};"
                                       " remove them first", errors.ECode.WRONG_STATE)
        if data.instances:
            raise errors.OpPrereqError(f"cluster still has {len(data['instances'])} instance(s)",
                                       errors.ECode.WRONG_STATE)

    def exec(self):
        return self.cfg.read(lambda d: d.cluster["master_node"])
