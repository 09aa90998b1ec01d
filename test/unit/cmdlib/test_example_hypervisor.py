"""A hypervisor is one module: this ``example`` backend, defined here and nowhere else, becomes a
choice of every opcode, takes the hvparams its table declares, is run by noded and carries an
instance through the logical units once it is registered (README, "Adding a hypervisor")."""
from __future__ import annotations

import pytest

from genet import errors, opcodes
from genet.hypervisor import base as hvbase
from genet.hypervisor.fake import FakeHypervisor
from genet.hypervisor.params import Param
from genet.opcodes import (OpInstanceCreate, OpInstanceQueryData, OpInstanceRemove,
                           OpInstanceSetParams)


class ExampleHypervisor(FakeHypervisor, register=False):
    """The fake's guests, with a table of its own: one hvparam."""
    name = "example"
    PARAMETERS = {"colour": Param(str, "green", "The colour of the example guest",
                                  lambda v: None if v in ("green", "blue") else "must be green or blue")}


@pytest.fixture
def example(cluster):
    hvbase.HYPERVISORS.add(ExampleHypervisor)      # what defining it in genet/hypervisor/example.py does
    try:
        # enabled as gnt-cluster init --enabled-hypervisors would
        cluster.ctx.cfg.update(lambda data: data.cluster.enabled_hypervisors.append("example"))
        yield ExampleHypervisor
    finally:
        hvbase.HYPERVISORS.remove("example")


def create_op(**hvparams) -> OpInstanceCreate:
    return OpInstanceCreate(instance_name="ex1", disk_template="diskless", pnode="node3", os_type="noop",
                            hypervisor="example", hvparams=hvparams, beparams={"memory": 64})


def test_opcodes_accept_a_registered_hypervisor_and_name_it_among_the_choices(example):
    assert create_op().hypervisor == "example"
    param = next(p for p in opcodes.OpInstanceCreate.PARAMS if p.name == "hypervisor")
    assert "example" in param.type.inner.choices


def test_an_unregistered_hypervisor_is_refused_naming_the_known_ones():
    with pytest.raises(errors.OpPrereqError, match="hypervisor.*must be one of fake, kvm"):
        create_op()


def test_its_hvparams_come_from_its_table(cluster, example):
    cluster.refused(create_op(colour="red"), "colour.*must be green or blue")
    cluster.refused(create_op(kernel_path="/vmlinuz"), "kernel_path")     # kvm's, not this backend's
    cluster.run(create_op(colour="blue"))
    assert cluster.nodes["node3"].procs._hv("example").info("ex1")["state"] == "running"
    info = cluster.run(OpInstanceQueryData(instances=["ex1"]))["ex1"]
    assert info["hypervisor"] == "example" and info["hv_actual"] == {"colour": "blue"}
    cluster.refused(OpInstanceSetParams(instance_name="ex1", hvparams={"colour": "red"}), "must be green or blue")
    cluster.run(OpInstanceRemove(instance_name="ex1"))
    assert cluster.nodes["node3"].procs._hv("example").info("ex1") is None
