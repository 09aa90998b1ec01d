"""The config document: atomic writes, validation, roles and candidate promotion."""
import pytest

from genet import config, errors, paths


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


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b'{"serial_no": 1', "not valid JSON"),
    (b"[]", "top level is not an object"),
    (b'{"version": 1, "serial_no": "x", "cluster": {}, "nodes": {}, "nodegroups": {}, "instances": {}}',
     "field 'serial_no' must be an integer, not str"),
    (b'{"version": 1, "serial_no": 3, "cluster": {}, "nodes": {}, "nodegroups": {}, "instances": {}}',
     "cluster: field 'cluster_name' is missing"),
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


def test_ssconf_has_every_file_of_ganetis_in_its_format():
    data = make(3, pool=2)
    config.maintain_candidates(data)
    values = config.ssconf_values(data)
    assert values["master_node"] == "node1"
    assert values["master_candidates"] == "node1\nnode2"
    assert values["node_list"].splitlines() == ["node1", "node2", "node3"]       # Ganeti's formats
    assert values["node_primary_ips"].splitlines() == ["node1 127.0.0.11", "node2 127.0.0.12", "node3 127.0.0.13"]
    assert values["node_vm_capable"].splitlines()[0] == "node1=True"
    assert values["master_candidates_ips"] == "127.0.0.11\n127.0.0.12"
    assert values["hypervisor_list"] == "fake" and "serial_speed=38400" in values["hvparams_fake"].splitlines()
    assert set(config.SSCONF_KEYS) <= set(values)


def test_a_node_writes_only_ssconf_files_it_knows_and_reads_them_all_back(tmp_path, monkeypatch):
    from genet.noded import NodeProcedures
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    paths.ensure_dirs()
    procs = NodeProcedures()
    procs.rpc_write_ssconf({"instance_list": "web1\nweb2", "hvparams_kvm": "acpi=True"})
    with pytest.raises(errors.OpPrereqError, match="unknown ssconf key '../x'"):
        procs.rpc_write_ssconf({"../x": "y"})
    assert config.read_ssconf() == {"instance_list": "web1\nweb2", "hvparams_kvm": "acpi=True"}
    assert [p.name for p in config.ssconf_files()] == ["ssconf_hvparams_kvm", "ssconf_instance_list"]
