"""Opcodes of gnt-cluster's administration commands: tag search, rename, disk size repair and
certificate renewal (Ganeti's names)."""
from __future__ import annotations

from genet.opcodes.base import NAME, OpCode, POSITIONAL, Param, REQUIRED
from genet.ptypes import Bool, ListOf, Maybe, String


PEM = String(non_empty=True, max_len=1 << 20)


class OpTagsSearch(OpCode):
    """Every tag of the cluster, its nodes, groups, instances and networks matching a regular
    expression, as [path, tag] pairs (gnt-cluster search-tags)."""
    SUMMARY_FIELD = "pattern"
    PARAMS = (
        Param("pattern", String(non_empty=True), REQUIRED, "Regular expression (not anchored)", POSITIONAL,
              "PATTERN"),
    )


class OpClusterRename(OpCode):
    """Give the cluster a new name (in the config and every node's ssconf)."""
    SUMMARY_FIELD = "name"
    PARAMS = (Param("name", NAME, REQUIRED, "The cluster's new name", POSITIONAL, "NEW_NAME"),)


class OpClusterActivateMasterIp(OpCode):
    """Put the master IP on the master netdev of the master node (gnt-cluster activate-master-ip)."""


class OpClusterDeactivateMasterIp(OpCode):
    """Take the master IP off the master node (gnt-cluster deactivate-master-ip)."""


class OpClusterRepairDiskSizes(OpCode):
    """Ask each primary node the real size of each disk and correct the config where it differs."""
    PARAMS = (
        Param("instances", ListOf(NAME), [], "Instances to check (default: all)", POSITIONAL, "INSTANCE"),
    )


class OpClusterRenewCrypto(OpCode):
    """Renew the cluster certificate on every node without losing contact, and the RAPI and SPICE
    certificates (gnt-cluster renew-crypto; see gnt-cluster(8) for the order of the steps)."""
    PARAMS = (
        Param("node_certificates", Bool(), False, "Renew the cluster (node) certificate"),
        Param("new_rapi_certificate", Bool(), False, "Make a new self-signed RAPI certificate"),
        Param("rapi_certificate", Maybe(PEM), None, "The RAPI certificate and key to use (PEM text)"),
        Param("new_spice_certificate", Bool(), False, "Make a new SPICE certificate and CA"),
        Param("spice_certificate", Maybe(PEM), None, "The SPICE certificate and key to use (PEM text)"),
        Param("spice_ca_certificate", Maybe(PEM), None, "The CA certificate that signed it (PEM text)"),
        Param("new_cluster_domain_secret", Bool(), False, "Make a new cluster domain secret"),
        Param("cluster_domain_secret", Maybe(String()), None, "The cluster domain secret to use (one line)"),
    )
