"""DRBD minors and ports: what the config says is taken, what new disks get, what concurrent jobs hold."""
import threading

import pytest

from genet import errors
from genet.drbd_pool import DrbdPool, Reservations, generate_secret, port_range
from genet.storage.drbd.resource import check_logical_id


def drbd_instance(name, disks, template="drbd"):
    return {"name": name, "disk_template": template, "primary_node": disks[0]["nodes"][0] if disks else None,
            "disks": [{"uuid": f"{name}-{i}", "size": 128, "logical_id": lid} for i, lid in enumerate(disks)]}


def lid(nodes, minors, port):
    return {"nodes": nodes, "addresses": ["203.0.113.1", "203.0.113.2"], "port": port, "minors": minors,
            "secret": "s"}


def config(*instances, **cluster):
    return {"cluster": dict(cluster), "instances": {inst["name"]: inst for inst in instances}}


def test_pool_from_config_knows_which_disk_holds_each_minor_and_port():
    """When instances have drbd disks, their minors (per node) and ports are taken and attributed to them."""
    data = config(drbd_instance("web", [lid(["n1", "n2"], [0, 0], 11000), lid(["n1", "n2"], [1, 5], 11001)]),
                  drbd_instance("db", [lid(["n2", "n3"], [1, 0], 11003)]),
                  drbd_instance("plain1", [], template="plain"))
    pool = DrbdPool.from_config(data)
    assert pool.used_minors("n1") == [0, 1]
    assert pool.used_minors("n2") == [0, 1, 5]
    assert pool.used_minors("n3") == [0]
    assert pool.minor_owner("n2", 5) == ("web", 1)
    assert pool.minor_owner("n2", 1) == ("db", 0)
    assert pool.minor_owner("n3", 1) is None
    assert pool.port_owner(11003) == ("db", 0)
    assert pool.conflicts == []


def test_new_disk_gets_lowest_free_minor_on_each_node_and_lowest_free_port():
    """When a disk is added between n2 and n3, each node's first hole is used, independently."""
    data = config(drbd_instance("web", [lid(["n1", "n2"], [0, 0], 11000), lid(["n1", "n2"], [1, 2], 11002)]))
    pool = DrbdPool.from_config(data)
    got = pool.allocate_logical_id(["n2", "n3"], ["203.0.113.2", "203.0.113.3"], ("new", 0))
    assert got["minors"] == [1, 0]
    assert got["port"] == 11001
    assert got["nodes"] == ["n2", "n3"] and got["addresses"] == ["203.0.113.2", "203.0.113.3"]
    check_logical_id(got)                               # what the drbd template accepts
    again = pool.allocate_logical_id(["n2", "n3"], ["203.0.113.2", "203.0.113.3"], ("new", 1))
    assert again["minors"] == [3, 1] and again["port"] == 11003
    assert again["secret"] != got["secret"]


def test_same_node_named_twice_gets_two_minors():
    pool = DrbdPool()
    assert pool.allocate_minors(["n1", "n1"], ("x", 0)) == [0, 1]


def test_disk_between_one_node_and_itself_is_refused():
    with pytest.raises(errors.OpPrereqError, match="two different nodes") as info:
        DrbdPool().allocate_logical_id(["n1", "n1"], ["203.0.113.1", "203.0.113.1"], ("x", 0))
    assert info.value.ecode == "wrong_input"


def test_released_minor_and_port_are_handed_out_again():
    """When a disk is removed, its minors and port are the next ones given."""
    pool = DrbdPool()
    first = pool.allocate_logical_id(["n1", "n2"], ["203.0.113.1", "203.0.113.2"], ("a", 0))
    pool.allocate_logical_id(["n1", "n2"], ["203.0.113.1", "203.0.113.2"], ("b", 0))
    pool.release_logical_id(first)
    third = pool.allocate_logical_id(["n1", "n2"], ["203.0.113.1", "203.0.113.2"], ("c", 0))
    assert (third["minors"], third["port"]) == ([0, 0], 11000)


def test_full_port_range_and_full_minor_table_are_refused_as_temporary_shortage():
    data = config(drbd_instance("web", [lid(["n1", "n2"], [0, 0], 12000)]), drbd_port_range="12000-12001",
                  drbd_minor_count=2)
    pool = DrbdPool.from_config(data)
    assert pool.allocate_port(("x", 0)) == 12001
    with pytest.raises(errors.OpPrereqError, match="no free DRBD port left in 12000-12001") as info:
        pool.allocate_port(("y", 0))
    assert info.value.ecode == "temp_insufficient_resources"
    assert pool.allocate_minors(["n1"], ("x", 0)) == [1]
    with pytest.raises(errors.OpPrereqError, match="node n1 has no free DRBD minor left"):
        pool.allocate_minors(["n1"], ("y", 0))


def test_duplicates_in_config_are_listed_not_fatal_and_explicit_reservation_is_refused():
    """When two disks claim one minor or port, the pool still loads and names both for verify."""
    data = config(drbd_instance("a", [lid(["n1", "n2"], [4, 0], 11000)]),
                  drbd_instance("b", [lid(["n1", "n3"], [4, 0], 11000)]))
    pool = DrbdPool.from_config(data)
    assert pool.conflicts == [
        "DRBD minor 4 on node n1 is used by disk 0 of a and by disk 0 of b",
        "DRBD port 11000 is used by disk 0 of a and by disk 0 of b"]
    with pytest.raises(errors.OpPrereqError, match="minor 0 on node n2 is used by disk 0 of a") as info:
        pool.reserve_minor("n2", 0, ("c", 0))
    assert info.value.ecode == "resource_not_unique"
    with pytest.raises(errors.OpPrereqError, match="outside the DRBD port range"):
        pool.reserve_port(80, ("c", 0))


def test_minor_beyond_the_pool_size_in_config_still_counts():
    data = config(drbd_instance("a", [lid(["n1", "n2"], [5000, 0], 11000)]))
    pool = DrbdPool.from_config(data)
    assert pool.minor_owner("n1", 5000) == ("a", 0)
    assert 5000 in pool.used_minors("n1")


def test_port_range_comes_from_cluster_or_ganeti_default():
    assert port_range({"cluster": {}}) == (11000, 14999)
    assert port_range({"cluster": {"drbd_port_range": "20000-20100"}}) == (20000, 20100)
    for bad in ("20000", "b-c", "3000-2000", "0-10"):
        with pytest.raises(errors.ConfigurationError, match="drbd_port_range"):
            port_range({"cluster": {"drbd_port_range": bad}})


def test_pending_reservations_of_running_jobs_are_not_handed_out_twice():
    """When two jobs allocate before either wrote the config, they get different minors and ports."""
    data = config(drbd_instance("web", [lid(["n1", "n2"], [0, 0], 11000)]))
    pending = Reservations()
    first = DrbdPool.from_config(data, pending).allocate_logical_id(["n1", "n2"], ["203.0.113.1", "203.0.113.2"],
                                                                    ("job1-inst", 0))
    pending.add_logical_id("job1", first, ("job1-inst", 0))
    second = DrbdPool.from_config(data, pending).allocate_logical_id(["n1", "n2"], ["203.0.113.1", "203.0.113.2"],
                                                                     ("job2-inst", 0))
    assert (first["minors"], first["port"]) == ([1, 1], 11001)
    assert (second["minors"], second["port"]) == ([2, 2], 11002)
    assert DrbdPool.from_config(data, pending).minor_owner("n1", 1) == ("job1-inst", 0)
    pending.release("job1")
    third = DrbdPool.from_config(data, pending).allocate_logical_id(["n1", "n2"], ["203.0.113.1", "203.0.113.2"],
                                                                    ("job3-inst", 0))
    assert (third["minors"], third["port"]) == ([1, 1], 11001)


def test_reservations_survive_concurrent_jobs():
    pending = Reservations()
    lids = [{"nodes": ["n1", "n2"], "minors": [i, i], "port": 11000 + i} for i in range(200)]
    threads = [threading.Thread(target=pending.add_logical_id, args=(f"job{i}", lids[i], (f"i{i}", 0)))
               for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pending.items()) == 600
    pool = DrbdPool.from_config({"cluster": {}, "instances": {}}, pending)
    assert pool.allocate_port(("x", 0)) == 11200


def test_generated_secret_fits_drbd():
    secret = generate_secret()
    assert len(secret) == 40 and int(secret, 16) >= 0
    assert generate_secret() != secret


def test_mirror_disks_hold_ports_of_the_same_range_but_no_minors():
    """mirror disks listen on a port of the same range: a new drbd disk must not take it."""
    mirror_lid = {"nodes": ["n1", "n2"], "addresses": ["203.0.113.1", "203.0.113.2"], "port": 11000}
    pool = DrbdPool.from_config(config(drbd_instance("m1", [mirror_lid], template="mirror")))
    assert pool.port_owner(11000) == ("m1", 0) and pool.used_minors("n1") == []
    lid2 = pool.allocate_logical_id(["n1", "n2"], ["203.0.113.1", "203.0.113.2"], ("d1", 0))
    assert lid2["port"] == 11001 and lid2["minors"] == [0, 0]
    reservations = Reservations()
    reservations.add_logical_id("job1", mirror_lid, ("m2", 0))
    assert DrbdPool.from_config(config(), reservations).port_owner(11000) == ("m2", 0)
