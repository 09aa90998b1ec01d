"""A disk template is one module: this tiny ``example`` template, defined here and nowhere else,
becomes a choice of every opcode, is served by noded's procedures and runs through the logical
units once it is registered (README, "Adding a disk template")."""
from __future__ import annotations

from pathlib import Path

import pytest

from genet import errors, opcodes, paths
from genet.opcodes import (OpInstanceCreate, OpInstanceGrowDisk, OpInstanceQueryData, OpInstanceRemove,
                           OpInstanceShutdown)
from genet.storage import base as storage


class ExampleTemplate(storage.DiskTemplate, register=False):
    """Each disk one raw file named after the instance and index, under ROOT/srv/example."""
    name = "example"

    def path(self, instance: str, disk: dict, index: int) -> Path:
        return paths.root() / "srv/example" / f"{instance}.{index}"

    def ganeti_logical_id(self, instance: str, disk: dict, index: int) -> list:
        return ["example", f"{instance}.{index}"]


@pytest.fixture
def example():
    storage.TEMPLATES.add(ExampleTemplate)     # what defining it in genet/storage/example.py does
    yield ExampleTemplate
    storage.TEMPLATES.remove("example")


def create_op(**kwargs) -> OpInstanceCreate:
    return OpInstanceCreate(instance_name="ex1", disk_template="example", pnode="node3", os_type="noop",
                            disks=[{"size": 8}], beparams={"memory": 64}, **kwargs)


def test_opcodes_accept_a_registered_template_and_name_it_among_the_choices(example):
    assert create_op().disk_template == "example"
    template = next(p for p in opcodes.OpInstanceCreate.PARAMS if p.name == "disk_template")
    assert "example" in template.type.choices and "example" in template.type.schema["enum"]


def test_an_unregistered_template_is_refused_naming_the_known_ones():
    with pytest.raises(errors.OpPrereqError, match="disk_template.*must be one of diskless, drbd, file"):
        create_op()


def test_an_instance_of_the_new_template_lives_its_whole_life(cluster, example):
    cluster.run(create_op())
    image = cluster.nodes["node3"].root / "srv/example/ex1.0"
    assert image.stat().st_size == 8 << 20 and cluster.running()["node3"] == ["ex1"]
    cluster.run(OpInstanceShutdown(instance_name="ex1", timeout=5))
    cluster.run(OpInstanceGrowDisk(instance_name="ex1", disk=0, amount=8))
    assert image.stat().st_size == 16 << 20
    info = cluster.run(OpInstanceQueryData(instances=["ex1"]))["ex1"]
    assert info["disk_template"] == "example" and info["disks"][0]["logical_id"] == ["example", "ex1.0"]
    cluster.run(OpInstanceRemove(instance_name="ex1"))
    assert not image.exists() and cluster.instance("ex1") is None
