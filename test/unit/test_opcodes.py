"""Opcode validation and the CLI options derived from the same declarations."""
import argparse

import pytest

from genet import errors, opcodes
from genet.cli import base


def test_opcode_round_trips_through_its_wire_form():
    """When an opcode is encoded and decoded, every parameter survives."""
    op = opcodes.OpTestDelay(duration=1.5, on_nodes=["node2"], repeat=2)
    again = opcodes.from_dict(op.to_dict())
    assert again.to_dict() == op.to_dict()
    assert again.duration == 1.5 and again.on_nodes == ["node2"]


@pytest.mark.parametrize("data, message", [
    ({"OP_ID": "OP_NO_SUCH"}, "unknown opcode"),
    ({"OP_ID": "OP_TEST_DELAY"}, "missing required parameter 'duration'"),
    ({"OP_ID": "OP_TEST_DELAY", "duration": "abc"}, "parameter 'duration': expected a number"),
    ({"OP_ID": "OP_TEST_DELAY", "duration": -1}, "must be at least 0"),
    ({"OP_ID": "OP_TEST_DELAY", "duration": 1, "bogus": 1}, "unknown parameter"),
    ({"OP_ID": "OP_TEST_DELAY", "duration": 1, "priority": 99}, "at most 19"),
    ({"OP_ID": "OP_TEST_DELAY", "duration": 1, "depends": [[1, ["bogus"]]]}, "bad dependency status"),
    ([1, 2], "must be an object"),
])
def test_bad_opcode_is_refused_with_a_message_naming_the_problem(data, message):
    """When an opcode has a wrong, missing or unknown parameter, OpPrereqError names it."""
    with pytest.raises(errors.OpPrereqError, match=message) as info:
        opcodes.from_dict(data)
    assert info.value.ecode == "wrong_input"


def test_null_for_a_defaulted_parameter_means_the_default():
    """When a RAPI client sends null for a parameter with a default, the default applies."""
    op = opcodes.from_dict({"OP_ID": "OP_TEST_DELAY", "duration": 0, "on_master": None})
    assert op.on_master is True


def test_summary_names_the_opcode_and_its_main_field():
    assert opcodes.OpNodeAdd(node_name="node2").summary() == "NODE_ADD(node2)"
    assert opcodes.OpClusterQuery().summary() == "CLUSTER_QUERY"


@pytest.mark.parametrize("opclass", list(opcodes.registry().values()), ids=lambda c: c.__name__)
def test_cli_options_build_the_same_opcode_as_the_wire(opclass):
    """For every opcode, options derived from its parameters parse back into a valid opcode."""
    parser = argparse.ArgumentParser()
    base.add_opcode_options(parser, opclass)
    argv = []
    for param in opclass.all_params():
        if param.cli == opcodes.POSITIONAL and param.required:
            argv.append({"duration": "0.5", "disk": "0", "amount": "1G", "storage_type": "lvm-pv"}.get(param.name,
                                                                                                "node1"))
    ns = parser.parse_args(argv)
    samples = {"kind": "cluster", "disk_template": "diskless", "target_node": "node2",
               "network": "192.0.2.0/24", "group_name": "default", "network_mode": "bridged",
               "network_link": "br0", "output_fields": ["name"], "changes": {"allocatable": False},
               "instances": [{"instance_name": "web1", "disk_template": "diskless"}], "command": "health", "mode": "local"}
    extra = {p.name: samples[p.name] for p in opclass.PARAMS if p.required and p.cli != opcodes.POSITIONAL}
    op = base.opcode_from_args(opclass, ns, **extra)
    assert opcodes.from_dict(op.to_dict()).to_dict() == op.to_dict()


def test_cli_bool_flag_and_repeatable_option_reach_the_opcode():
    parser = argparse.ArgumentParser()
    base.add_opcode_options(parser, opcodes.OpTestDelay)
    ns = parser.parse_args(["2", "--no-master", "-n", "node2", "-n", "node3", "-r", "3"])
    op = base.opcode_from_args(opcodes.OpTestDelay, ns)
    assert (op.duration, op.on_master, op.on_nodes, op.repeat) == (2.0, False, ["node2", "node3"], 3)


def test_cli_yes_no_option_parses_words():
    parser = argparse.ArgumentParser()
    base.add_opcode_options(parser, opcodes.OpNodeSetParams)
    op = base.opcode_from_args(opcodes.OpNodeSetParams, parser.parse_args(["node2", "-C", "no", "-O", "yes"]))
    assert op.master_candidate is False and op.offline is True


def test_cli_bad_value_is_an_argparse_error(capsys):
    parser = argparse.ArgumentParser()
    base.add_opcode_options(parser, opcodes.OpNodeSetParams)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["node2", "-C", "maybe"])
    assert info.value.code == 2
    assert "expected yes or no" in capsys.readouterr().err


def test_errors_cross_the_wire_with_their_class_and_ecode():
    err = errors.OpPrereqError("node 'x' is not in the cluster", errors.ECode.NOENT)
    again = errors.from_wire(errors.to_wire(err))
    assert type(again) is errors.OpPrereqError
    assert again.args == ("node 'x' is not in the cluster", "unknown_entity")
    assert isinstance(errors.from_wire(["NoSuchClass", ["boom"]]), errors.OpExecError)
    assert errors.exit_code(errors.ParameterError("x")) == 14


@pytest.mark.parametrize("data, message", [
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "n"}, "missing required parameter 'network'"),
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "n", "network": "192.0.2.1/24"}, "host bits set"),
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "n", "network": "10.0.0.0/8"}, "prefix length /8"),
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "n", "network": "192.0.2.0/24", "gateway": "192.0.2"},
     "parameter 'gateway': '192.0.2' is not an IPv4 address"),
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "n", "network": "192.0.2.0/24", "mac_prefix": "aa:bb"},
     "not a MAC prefix"),
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "n", "network": "192.0.2.0/24", "add_reserved_ips": ["x"]},
     "item 0: 'x' is not an IPv4 address"),
    ({"OP_ID": "OP_NETWORK_SET_PARAMS", "network_name": "n", "network6": "2001:db8::1/64"}, "host bits set"),
    ({"OP_ID": "OP_NETWORK_CONNECT", "group_name": "g", "network_name": "n", "network_mode": "nat",
      "network_link": "br0"}, "must be one of bridged, routed, openvswitch"),
    ({"OP_ID": "OP_GROUP_ADD", "group_name": "g", "alloc_policy": "sometimes"}, "must be one of preferred"),
    ({"OP_ID": "OP_GROUP_ADD", "group_name": "g", "ndparams": {"ssh_port": 0}}, "ssh_port: must be at least 1"),
    ({"OP_ID": "OP_GROUP_ADD", "group_name": "g", "ndparams": {"colour": "red"}}, "unknown key\\(s\\) colour"),
    ({"OP_ID": "OP_GROUP_ADD", "group_name": "g", "diskparams": {"floppy": {}}}, "unknown disk template 'floppy'"),
    ({"OP_ID": "OP_GROUP_SET_PARAMS", "group_name": "g", "ipolicy": {"vcpu-ratio": "x"}}, "expected a number"),
    ({"OP_ID": "OP_GROUP_ASSIGN_NODES", "group_name": "g"}, "missing required parameter 'nodes'"),
    ({"OP_ID": "OP_GROUP_ADD", "group_name": "rack\x021"}, "invalid name 'rack.*use printable"),
    ({"OP_ID": "OP_GROUP_ADD", "group_name": "rack 1"}, "invalid name 'rack 1'"),
    ({"OP_ID": "OP_GROUP_RENAME", "group_name": "g", "new_name": "a/b"}, "invalid name 'a/b'"),
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "\U000ed97c", "network": "192.0.2.0/24"}, "invalid name"),
    ({"OP_ID": "OP_NETWORK_ADD", "network_name": "..", "network": "192.0.2.0/24"}, "invalid name '..'"),
])
def test_bad_group_or_network_opcode_is_refused(data, message):
    """When a group or network opcode has an invalid address, policy or parameter, the error names it."""
    with pytest.raises(errors.OpPrereqError, match=message) as info:
        opcodes.from_dict(data)
    assert info.value.ecode == "wrong_input"


def test_group_and_network_values_are_normalised():
    op = opcodes.OpNetworkAdd(network_name="n", network="192.0.2.0/24", mac_prefix="AA:0B:CC",
                              network6="2001:DB8:0::/64", gateway6="2001:db8:0:0::1")
    assert (op.mac_prefix, op.network6, op.gateway6) == ("aa:0b:cc", "2001:db8::/64", "2001:db8::1")
    op = opcodes.OpNetworkSetParams(network_name="n", gateway="none", mac_prefix="none")
    assert (op.gateway, op.mac_prefix) == ("none", "none")
    op = opcodes.OpGroupSetParams(group_name="g", ndparams={"ovs": "default", "spindle_count": 2})
    assert op.ndparams == {"ovs": "default", "spindle_count": 2}
    assert op.summary() == "GROUP_SET_PARAMS(g)"
    assert opcodes.OpNetworkConnect(group_name="g", network_name="n", network_mode="routed",
                                    network_link="").summary() == "NETWORK_CONNECT(n)"


def test_group_and_network_cli_options_parse_ganeti_spellings():
    parser = argparse.ArgumentParser()
    base.add_opcode_options(parser, opcodes.OpGroupAdd)
    ns = parser.parse_args(["rack1", "--alloc-policy", "last_resort", "--node-parameters", "ssh_port=2222,ovs=yes",
                            "-D", "plain:stripes=2"])
    op = base.opcode_from_args(opcodes.OpGroupAdd, ns)
    assert (op.alloc_policy, op.ndparams, op.diskparams) == ("last_resort", {"ssh_port": 2222, "ovs": True},
                                                             {"plain": {"stripes": "2"}})
    parser = argparse.ArgumentParser()
    base.add_opcode_options(parser, opcodes.OpNetworkAdd)
    ns = parser.parse_args(["net1", "--network=192.0.2.0/24", "--gateway=192.0.2.1",
                            "--add-reserved-ips=192.0.2.5,192.0.2.6", "--no-conflicts-check"])
    op = base.opcode_from_args(opcodes.OpNetworkAdd, ns)
    assert (op.network, op.gateway, op.add_reserved_ips, op.conflicts_check) == \
        ("192.0.2.0/24", "192.0.2.1", ["192.0.2.5", "192.0.2.6"], False)


@pytest.mark.parametrize("prog, opclass, argv", [
    ("gnt_instance", opcodes.OpInstanceRemove, ["remove", "web1"]),
    ("gnt_instance", opcodes.OpInstanceMigrate, ["migrate", "-n", "node2", "web1"]),
    ("gnt_instance", opcodes.OpInstanceFailover, ["failover", "--ignore-consistency", "web1"]),
    ("gnt_instance", opcodes.OpInstanceMove, ["move", "-n", "node3", "web1"]),
    ("gnt_instance", opcodes.OpInstanceReinstall, ["reinstall", "web1"]),
    ("gnt_node", opcodes.OpNodeMigrate, ["migrate", "node2"]),
    ("gnt_node", opcodes.OpNodeEvacuate, ["evacuate", "-s", "node2"]),
    ("gnt_node", opcodes.OpNodeFailover, ["failover", "node2"]),
])
def test_ganeti_no_ask_flag_is_accepted_and_changes_nothing(prog, opclass, argv):
    """When a Ganeti script passes -f/--force to a command Ganeti asks before, the job is the same."""
    import importlib
    parser = argparse.ArgumentParser()
    importlib.import_module(f"genet.cli.{prog}").build(parser)
    plain, *forced = (parser.parse_args(args) for args in
                      (argv, [argv[0], "-f", *argv[1:]], [argv[0], "--force", *argv[1:]]))
    assert all(ns.no_ask for ns in forced) and not plain.no_ask
    # a command on many instances (cli.many) takes the instance from its names
    ops = [base.opcode_from_args(opclass, ns, **({"instance_name": ns.names[0]} if "names" in vars(ns) else {}))
           .to_dict() for ns in (plain, *forced)]
    assert ops[0] == ops[1] == ops[2]


@pytest.mark.parametrize("prog, opclass, argv", [
    ("gnt_instance", opcodes.OpInstanceRename, ["rename", "web1", "web2"]),
    ("gnt_instance", opcodes.OpInstanceCreate, ["add", "-t", "diskless", "web1"]),
    ("gnt_backup", opcodes.OpInstanceCreate, ["import", "-t", "diskless", "web1"]),
])
def test_ganeti_no_check_switches_are_accepted_and_genets_check_switches_turn_them_on(prog, opclass, argv):
    """When a Ganeti script passes --no-name-check --no-ip-check, the job is the one without
    them (genet checks only when asked); --name-check --ip-check ask for both checks."""
    import importlib
    parser = argparse.ArgumentParser()
    importlib.import_module(f"genet.cli.{prog}").build(parser)
    command, rest = argv[0], argv[1:]
    plain, ganeti, checked = (base.opcode_from_args(opclass, parser.parse_args([command, *extra, *rest]))
                              for extra in ([], ["--no-name-check", "--no-ip-check"], ["--name-check", "--ip-check"]))
    assert plain.to_dict() == ganeti.to_dict()
    assert (plain.name_check, plain.ip_check, checked.name_check, checked.ip_check) == (False, False, True, True)
