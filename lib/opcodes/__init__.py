"""Opcodes: plain records of what a user asked for, each declaring its parameters once.

``base`` has the machinery (Param, OpCode, from_dict, the registry); the opcodes are grouped by
subject (cluster, cluster_admin, node, group, network, instance, instance_data, test). Every opcode class and
parameter type is reachable as ``genet.opcodes.NAME``.
"""
from genet.opcodes.base import *  # noqa: F401,F403
from genet.opcodes.cluster import *  # noqa: F401,F403
from genet.opcodes.cluster_admin import *  # noqa: F401,F403
from genet.opcodes.group import *  # noqa: F401,F403
from genet.opcodes.instance import *  # noqa: F401,F403
from genet.opcodes.instance_data import *  # noqa: F401,F403
from genet.opcodes.network import *  # noqa: F401,F403
from genet.opcodes.node import *  # noqa: F401,F403
from genet.opcodes.test import *  # noqa: F401,F403
