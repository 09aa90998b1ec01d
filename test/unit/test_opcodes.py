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
            argv.append({"duration": "0.5", "disk": "0", "amount": "1G"}.get(param.name, "node1"))
    ns = parser.parse_args(argv)
    samples = {"kind": "cluster", "disk_template": "diskless", "target_node": "node2"}
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
