"""The config writer: each change stored and replicated as a change, rollbacks, the journal."""
import json
from pathlib import Path

import pytest

from genet import config, errors, objects
from genet.config_file import ConfigFile, journal_of
from genet.config_writer import ConfigWriter

OLD_CONFIG = Path(__file__).parent / "data" / "config-b137802.json"


def make(nodes=2):
    data = config.new_cluster("c1", "node1", "127.0.0.11")
    for i in range(2, nodes + 1):
        config.add_node(data, f"node{i}", f"127.0.0.{10 + i}")
    return data


def instance(name: str) -> dict:
    return {"name": name, "uuid": f"uuid-{name}", "primary_node": "node1", "disk_template": "diskless"}


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "config.data"
    config.write_atomic(path, config.dumps(make()))
    return path


def test_a_change_is_stored_in_the_journal_and_replicated_as_a_change(path):
    pushed = []
    writer = ConfigWriter(path, lambda data, change: pushed.append(change))
    before = path.read_bytes()
    writer.update(lambda d: d["cluster"].update(candidate_pool_size=5))
    (change,) = pushed
    assert change["base"] == [1, 0] and change["fields"]["serial_no"] == 2
    assert change["fields"]["cluster"]["candidate_pool_size"] == 5 and "set" not in change
    assert path.read_bytes() == before                       # the snapshot stays, the journal grows
    assert len(journal_of(path).read_bytes().splitlines()) == 2
    loaded = config.load(path)
    assert loaded.serial_no == 2 and loaded.cluster.candidate_pool_size == 5
    assert ConfigFile(path).stamp() == (2, 0)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_a_change_names_only_the_objects_that_changed(path):
    """A mutator that walks every instance sends only the one it changed; one removed is named."""
    writer = ConfigWriter(path)
    for name in ("a", "b", "c"):
        writer.update(lambda d, n=name: d["instances"].__setitem__(n, instance(n)))
    pushed = []
    writer.set_replicator(lambda data, change: pushed.append(change))

    def touch_b(data):
        for inst in data["instances"].values():
            if inst["name"] == "b":
                inst["admin_state"] = "up"
    writer.update(touch_b)
    writer.update(lambda d: d["instances"].pop("c"))
    writer.update(lambda d: d["instances"]["a"])              # read only: an empty change
    assert list(pushed[0]["set"]) == ["instances"] and list(pushed[0]["set"]["instances"]) == ["b"]
    assert pushed[0]["set"]["instances"]["b"]["admin_state"] == "up" and "cluster" not in pushed[0]["fields"]
    assert pushed[1]["del"] == {"instances": ["c"]} and "set" not in pushed[1]
    assert set(pushed[2]) == {"base", "fields"}
    assert sorted(config.load(path).instances) == ["a", "b"] and config.load(path).instances["b"].admin_state == "up"


@pytest.mark.parametrize("reach", [lambda c: dict(c), lambda c: {**c}, lambda c: c.copy(),
                                   lambda c: dict(c.items()), lambda c: {k: c[k] for k in c}])
def test_an_object_reached_through_a_copy_of_its_collection_is_still_seen(path, reach):
    writer = ConfigWriter(path)
    writer.update(lambda d: d["instances"].__setitem__("a", instance("a")))
    pushed = []
    writer.set_replicator(lambda data, change: pushed.append(change))
    writer.update(lambda d: reach(d.instances)["a"].update(admin_state="up"))
    assert pushed[0]["set"]["instances"]["a"]["admin_state"] == "up"
    assert config.load(path).instances["a"].admin_state == "up"


def test_changed_objects_become_typed_and_are_checked(path):
    writer = ConfigWriter(path)
    writer.update(lambda d: d["instances"].__setitem__("a", instance("a")))
    inst = writer.snapshot().instances["a"]
    assert isinstance(inst, objects.Instance) and inst.disk_template == "diskless" and inst.disks == []
    assert writer.read(lambda d: type(d.instances["a"])) is objects.Instance
    with pytest.raises(errors.ConfigurationError, match=r"instances\['b'\]: field 'primary_node' is missing"):
        writer.update(lambda d: d["instances"].__setitem__("b", {"name": "b", "uuid": "u", "disk_template": "x"}))
    assert "b" not in writer.snapshot().instances and writer.serial == 2


def test_readers_keep_the_snapshot_they_took(path):
    writer = ConfigWriter(path)
    writer.update(lambda d: d["instances"].__setitem__("a", instance("a")))
    taken = writer.snapshot()
    writer.update(lambda d: d["instances"]["a"].update(admin_state="up"))
    writer.update(lambda d: d["cluster"]["tags"].append("x"))
    assert taken.instances["a"].admin_state == "down" and taken.cluster.tags == [] and taken.serial_no == 2
    assert writer.snapshot().instances["a"].admin_state == "up" and writer.snapshot().serial_no == 4


def test_failed_mutation_leaves_config_untouched(path):
    """When a mutator raises, neither memory nor disk change and nothing is replicated."""
    before = path.read_bytes()
    pushed = []
    writer = ConfigWriter(path, lambda d, c: pushed.append(d))

    def bad(data):
        data["nodes"].clear()
        data["cluster"]["tags"].append("half-done")
        raise errors.OpPrereqError("no")
    with pytest.raises(errors.OpPrereqError):
        writer.update(bad)
    assert path.read_bytes() == before and not journal_of(path).exists() and writer.serial == 1 and not pushed
    assert "node2" in writer.snapshot()["nodes"] and writer.read(lambda d: sorted(d.nodes)) == ["node1", "node2"]
    assert writer.read(lambda d: d.cluster.tags) == []


def test_a_change_a_deposed_master_could_not_replicate_is_not_kept(path):
    """When the candidates refuse a change because the master was deposed, it keeps its previous
    config in memory and on disk and pushes nothing more; the next change takes the same serial."""
    def refuse(data, change):
        raise errors.EpochError("refused: the master is now node2", "node2")
    writer = ConfigWriter(path, refuse)
    with pytest.raises(errors.EpochError):
        writer.update(lambda d: d["cluster"]["tags"].append("uncommitted"))
    assert config.load(path).serial_no == 1 and config.load(path).cluster.tags == [] and writer.serial == 1
    assert writer.snapshot()["cluster"]["tags"] == [] and writer.read(lambda d: d["cluster"]["tags"]) == []
    pushed = []
    writer.set_replicator(lambda data, change: pushed.append(change["fields"]["serial_no"]))
    writer.update(lambda d: d["cluster"]["tags"].append("committed"))
    assert pushed == [2] and config.load(path).cluster.tags == ["committed"]


def test_a_change_only_a_minority_acknowledged_is_replaced_where_it_was_stored(path):
    """When too few candidates acknowledge a change, the master goes back to its previous content
    and pushes the whole of it again under the next serial, so the candidates that stored the
    refused change (serial 2) hold the old content (serial 3) instead, and a later failover cannot
    pick it."""
    stored: dict[int, list] = {}                # what a candidate of the minority holds, by serial

    def minority(data, change):
        stored[data["serial_no"]] = (change["fields"] if change else data)["cluster"]["tags"]
        raise errors.QuorumError("acknowledged by 2 of 5")
    writer = ConfigWriter(path, minority)
    with pytest.raises(errors.QuorumError, match="2 of 5"):
        writer.update(lambda d: d["cluster"]["tags"].append("uncommitted"))
    assert stored == {2: ["uncommitted"], 3: []}
    assert writer.serial == 3 and config.load(path).cluster.tags == [] and config.load(path).serial_no == 3
    assert writer.snapshot()["cluster"]["tags"] == [] and writer.read(lambda d: d["cluster"]["tags"]) == []


def test_the_journal_is_folded_into_a_new_snapshot_now_and_then(path):
    writer = ConfigWriter(path, compact_after=3)
    for tag in "abc":
        writer.update(lambda d, t=tag: d["cluster"]["tags"].append(t))
    assert json.loads(path.read_bytes())["serial_no"] == 1 and ConfigFile(path).entries() == 3
    writer.update(lambda d: d["cluster"]["tags"].append("d"))
    assert json.loads(path.read_bytes())["cluster"]["tags"] == list("abcd") and not journal_of(path).exists()
    assert ConfigWriter(path).snapshot().cluster.tags == list("abcd")


def test_a_journal_of_another_snapshot_or_a_torn_line_is_not_applied(path):
    writer = ConfigWriter(path)
    writer.update(lambda d: d["cluster"]["tags"].append("a"))
    writer.update(lambda d: d["cluster"]["tags"].append("b"))
    journal = journal_of(path)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines) + lines[-1][:20])          # a crash while appending
    assert config.load(path).cluster.tags == ["a", "b"] and ConfigFile(path).stamp() == (3, 0)
    # a new snapshot (a whole config received) written, the crash before the journal's removal
    config.write_atomic(path, config.dumps(dict(make(), serial_no=7)))
    assert config.load(path).serial_no == 7 and config.load(path).cluster.tags == []
    assert ConfigFile(path).stamp() == (7, 0)


def test_a_config_written_by_b137802_loads_typed_and_takes_changes(tmp_path):
    path = tmp_path / "config.data"
    path.write_bytes(OLD_CONFIG.read_bytes())
    data = config.load(path)
    assert data.cluster.cluster_name and isinstance(data.cluster, objects.Cluster)
    assert {inst.disk_template for inst in data.instances.values()} >= {"diskless", "file", "sharedfile"}
    for inst in data.instances.values():
        assert isinstance(inst, objects.Instance) and all(isinstance(d, objects.Disk) for d in inst.disks)
        assert all(isinstance(n, objects.NIC) and n.mac for n in inst.nics)
    default = next(g for g in data.nodegroups.values() if g.name == "default")
    assert default.alloc_policy == "preferred" and default.ipolicy == {}    # absent in that version
    writer = ConfigWriter(path)
    name = sorted(data.instances)[0]
    writer.update(lambda d: d["instances"][name]["tags"].append("upgraded"))
    assert "upgraded" in config.load(path).instances[name].tags
    # nothing of the old document is lost: every key it had is still there, with its value
    old = json.loads(OLD_CONFIG.read_bytes())
    new = json.loads(config.dumps(config.load(path)))
    for kind in ("nodes", "nodegroups", "networks", "instances"):
        for key, obj in old[kind].items():
            for field, value in obj.items():
                if not (kind == "instances" and key == name and field in ("tags", "serial_no", "mtime")):
                    assert keeps(new[kind][key][field], value), (kind, key, field)


def keeps(new, old) -> bool:
    """``new`` holds everything ``old`` held (fields filled with defaults may be added)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and keeps(new[k], v) for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and all(map(keeps, new, old))
    return new == old
