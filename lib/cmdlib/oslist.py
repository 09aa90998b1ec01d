"""OS definitions across the cluster: valid only where valid on every online node."""
from __future__ import annotations

from genet import opcodes
from genet.cmdlib.cluster import EveryNodeLU, online_nodes


class LUOsDiagnose(EveryNodeLU):
    OPCODE = opcodes.OpOsDiagnose

    def exec(self):
        online = online_nodes(self.cfg.snapshot())
        results = self.rpc.os_diagnose.on(online)
        merged: dict[str, dict] = {}
        for node, res in sorted(results.items()):
            if res.failed:
                self.feedback(f"Warning: node {node} did not report its OS definitions: {res.fail_msg}")
                continue
            for entry in res.payload:
                if entry.get("hidden"):
                    continue
                os_entry = merged.setdefault(entry["name"], {"name": entry["name"], "node_status": {},
                                                             "variants": None, "parameters": None,
                                                             "api_versions": None})
                os_entry["node_status"][node] = [entry["path"], entry["valid"], entry["diagnose"]]
                for key in ("variants", "api_versions"):
                    values = set(entry.get(key) or [])
                    os_entry[key] = values if os_entry[key] is None else os_entry[key] & values
                params = {tuple(p) for p in entry.get("parameters") or []}
                os_entry["parameters"] = params if os_entry["parameters"] is None else os_entry["parameters"] & params
        cluster = self.cfg.read(lambda d: d.cluster)
        out = []
        for name in sorted(merged):
            entry = merged[name]
            entry["hidden"], entry["blacklisted"] = name in cluster.hidden_os, name in cluster.blacklisted_os
            nodes_ok = [s[1] for s in entry["node_status"].values()]
            entry["valid"] = len(nodes_ok) == sum(1 for r in results.values() if not r.failed) and all(nodes_ok)
            entry["variants"] = sorted(entry["variants"] or [])
            entry["api_versions"] = sorted(entry["api_versions"] or [])
            entry["parameters"] = sorted([list(p) for p in entry["parameters"] or []])
            out.append(entry)
        return out
