"""The config document: atomic writes, validation, roles and candidate promotion."""
import json

import pytest

from genet import config, errors


def make(nodes=3, pool=10):
    data = config.new_cluster("c1", "node1", "127.0.0.11", candidate_pool_size=pool)
    for i in range(2, nodes + 1):
        config.add_node(data, f"node{i}", f"127.0.0.{10 + i}")
    return data


def test_new_cluster_has_the_master_as_candidate():
    data = make(1)
    assert config.candidates(data) == ["node1"]
    assert config.node_role(data, data["nodes"]["node1"]) == "master"
    assert data["serial_no"] == 1


def test_maintain_candidates_promotes_up_to_the_pool_size():
    """When nodes join, capable ones are promoted until candidate_pool_size is reached."""
    data = make(4, pool=3)
    data["nodes"]["node2"]["drained"] = True
    promoted = config.maintain_candidates(data)
    assert promoted == ["node3", "node4"]
    assert config.candidates(data) == ["node1", "node3", "node4"]


def test_writer_bumps_serial_writes_atomically_and_replicates(tmp_path):
    path = tmp_path / "config.data"
    config.write_atomic(path, config.dumps(make(2)))
    pushed = []
    writer = config.ConfigWriter(path, lambda data, content: pushed.append((data["serial_no"], content)))
    writer.update(lambda d: d["cluster"].update(candidate_pool_size=5))
    on_disk = json.loads(path.read_text())
    assert on_disk["serial_no"] == 2 and on_disk["cluster"]["candidate_pool_size"] == 5
    assert pushed == [(2, path.read_bytes())]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_mutation_leaves_config_untouched(tmp_path):
    """When a mutator raises, neither memory nor disk change and nothing is replicated."""
    path = tmp_path / "config.data"
    config.write_atomic(path, config.dumps(make(2)))
    before = path.read_bytes()
    pushed = []
    writer = config.ConfigWriter(path, lambda d, c: pushed.append(d))

    def bad(data):
        data["nodes"].clear()
        raise errors.OpPrereqError("no")
    with pytest.raises(errors.OpPrereqError):
        writer.update(bad)
    assert path.read_bytes() == before and writer.serial == 1 and not pushed
    assert "node2" in writer.snapshot()["nodes"]


def test_a_change_a_deposed_master_could_not_replicate_is_not_kept(tmp_path):
    """When the candidates refuse a change because the master was deposed, it keeps its previous
    config in memory and on disk and pushes nothing more; the next change takes the same serial."""
    path = tmp_path / "config.data"
    config.write_atomic(path, config.dumps(make(2)))
    before = path.read_bytes()

    def refuse(data, content):
        raise errors.EpochError("refused: the master is now node2", "node2")
    writer = config.ConfigWriter(path, refuse)
    with pytest.raises(errors.EpochError):
        writer.update(lambda d: d["cluster"]["tags"].append("uncommitted"))
    assert path.read_bytes() == before and writer.serial == 1
    assert writer.snapshot()["cluster"]["tags"] == [] and writer.read(lambda d: d["cluster"]["tags"]) == []
    pushed = []
    writer.set_replicator(lambda data, content: pushed.append(data["serial_no"]))
    writer.update(lambda d: d["cluster"]["tags"].append("committed"))
    assert pushed == [2] and json.loads(path.read_text())["cluster"]["tags"] == ["committed"]


def test_a_change_only_a_minority_acknowledged_is_replaced_where_it_was_stored(tmp_path):
    """When too few candidates acknowledge a change, the master goes back to its previous content
    and pushes it again under the next serial, so the candidates that stored the refused change
    (serial 2) hold the old content (serial 3) instead, and a later failover cannot pick it."""
    path = tmp_path / "config.data"
    config.write_atomic(path, config.dumps(make(2)))
    stored: dict[int, list] = {}                # what a candidate of the minority holds, by serial

    def minority(data, content):
        stored[data["serial_no"]] = json.loads(content)["cluster"]["tags"]
        raise errors.QuorumError("acknowledged by 2 of 5")
    writer = config.ConfigWriter(path, minority)
    with pytest.raises(errors.QuorumError, match="2 of 5"):
        writer.update(lambda d: d["cluster"]["tags"].append("uncommitted"))
    assert stored == {2: ["uncommitted"], 3: []}
    assert writer.serial == 3 and json.loads(path.read_text())["cluster"]["tags"] == []
    assert writer.snapshot()["cluster"]["tags"] == [] and writer.read(lambda d: d["cluster"]["tags"]) == []


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b'{"serial_no": 1', "not valid JSON"),
    (b"[]", "top level is not an object"),
    (b'{"serial_no": "x", "cluster": {}, "nodes": {}, "nodegroups": {}, "instances": {}}', "'serial_no'"),
])
def test_corrupt_or_truncated_config_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "config.data"
    path.write_bytes(content)
    with pytest.raises(errors.ConfigurationError, match=message):
        config.load(path)
    assert errors.exit_code(errors.ConfigurationError("x")) == 2


def test_truncated_real_config_is_refused(tmp_path):
    path = tmp_path / "config.data"
    text = config.dumps(make(3))
    path.write_bytes(text[: len(text) // 2])
    with pytest.raises(errors.ConfigurationError, match="corrupt"):
        config.load(path)


def test_missing_config_says_not_part_of_a_cluster(tmp_path):
    with pytest.raises(errors.NotClusterError, match="not part of a cluster"):
        config.load(tmp_path / "nope")
    assert errors.exit_code(errors.NotClusterError("x")) == 5


def test_ssconf_lists_master_nodes_and_candidates():
    data = make(3, pool=2)
    config.maintain_candidates(data)
    values = config.ssconf_values(data)
    assert values["master_node"] == "node1"
    assert values["master_candidates"] == "node1\nnode2"
    assert values["node_list"].splitlines() == ["node1 127.0.0.11", "node2 127.0.0.12", "node3 127.0.0.13"]
