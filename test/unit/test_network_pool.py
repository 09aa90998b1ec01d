"""The address pool of a network: reservations, their storage in the config, what queries show."""
import json

import pytest

from genet import errors
from genet.network_pool import AddressPool, find_network, nic_users, parse_network


def test_new_pool_reserves_network_broadcast_and_gateway_externally():
    """When a pool is created, the network, broadcast and gateway addresses are taken, nothing else."""
    pool = AddressPool.create("192.0.2.0/29", "192.0.2.1")
    assert pool.size == 8
    assert pool.map() == "XX.....X"
    assert pool.external_reservations() == ["192.0.2.0", "192.0.2.1", "192.0.2.7"]
    assert pool.instance_reservations() == []
    assert (pool.free_count, pool.reserved_count) == (5, 3)


def test_pool_survives_its_config_form():
    """When a pool is stored as base64 text in the JSON config and read back, every bit is kept."""
    pool = AddressPool.create("10.1.0.0/22", "10.1.0.1")
    pool.reserve("10.1.3.200")
    pool.reserve("10.1.2.9", external=True)
    stored = json.loads(json.dumps({"network": "10.1.0.0/22", **pool.to_config()}))
    again = AddressPool.of(stored)
    assert again.map() == pool.map()
    assert again.instance_reservations() == ["10.1.3.200"]
    assert again.external_reservations() == ["10.1.0.0", "10.1.0.1", "10.1.2.9", "10.1.3.255"]


def test_reserving_a_taken_address_is_refused_naming_who_has_it():
    pool = AddressPool.create("192.0.2.0/24", "192.0.2.1")
    pool.reserve("192.0.2.10")
    with pytest.raises(errors.OpPrereqError, match="in use by an instance") as info:
        pool.reserve("192.0.2.10", external=True)
    assert info.value.ecode == "resource_not_unique"
    with pytest.raises(errors.OpPrereqError, match="already reserved"):
        pool.reserve("192.0.2.1")


def test_address_outside_the_network_is_refused():
    pool = AddressPool.create("192.0.2.0/24")
    assert not pool.contains("198.51.100.1")
    with pytest.raises(errors.OpPrereqError, match="198.51.100.1 is not in network 192.0.2.0/24") as info:
        pool.reserve("198.51.100.1", external=True)
    assert info.value.ecode == "wrong_input"


def test_release_frees_an_address_but_never_network_or_broadcast():
    pool = AddressPool.create("192.0.2.0/24", "192.0.2.1")
    pool.release("192.0.2.1", external=True)
    assert not pool.is_reserved("192.0.2.1")
    for address in ("192.0.2.0", "192.0.2.255"):
        with pytest.raises(errors.OpPrereqError, match="network or broadcast address"):
            pool.release(address, external=True)
    with pytest.raises(errors.OpPrereqError, match="not reserved by an instance") as info:
        pool.release("192.0.2.50")
    assert info.value.ecode == "unknown_entity"


def test_reserved_kinds_are_kept_apart():
    """When an address is taken by an instance, it is reserved but not externally, and vice versa."""
    pool = AddressPool.create("192.0.2.0/24")
    pool.reserve("192.0.2.5")
    pool.reserve("192.0.2.6", external=True)
    assert pool.is_reserved("192.0.2.5") and pool.is_reserved("192.0.2.5", external=False)
    assert not pool.is_reserved("192.0.2.5", external=True)
    assert pool.is_reserved("192.0.2.6", external=True) and not pool.is_reserved("192.0.2.6", external=False)


def test_generate_free_gives_the_lowest_free_address_until_the_network_is_full():
    pool = AddressPool.create("192.0.2.0/30", "192.0.2.1")
    assert pool.generate_free() == "192.0.2.2"
    pool.reserve("192.0.2.2")
    with pytest.raises(errors.OpPrereqError, match="no free address") as info:
        pool.generate_free()
    assert info.value.ecode == "temp_insufficient_resources"


@pytest.mark.parametrize("text, message", [
    ("192.0.2.0", "CIDR notation"),
    ("192.0.2.1/24", "host bits set"),
    ("10.0.0.0/8", "prefix length /8"),
    ("192.0.2.0/31", "prefix length /31"),
    ("2001:db8::/64", "not a valid IPv4 network"),
    ("banana/24", "not a valid IPv4 network"),
])
def test_invalid_networks_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_network(text)


def test_corrupt_stored_pool_is_a_configuration_error():
    with pytest.raises(errors.ConfigurationError, match="not valid base64"):
        AddressPool("192.0.2.0/24", "!!!", None)
    with pytest.raises(errors.ConfigurationError, match="holds 8 bits, the network 256"):
        AddressPool("192.0.2.0/24", "AA==", None)


def test_networks_are_found_by_uuid_or_name_and_their_nics_listed():
    net = {"uuid": "u-1", "name": "net1", "network": "192.0.2.0/24"}
    data = {"networks": {"u-1": net},
            "instances": {"b": {"name": "b", "nics": [{"network": "net1"}, {"network": None}]},
                          "a": {"name": "a", "nics": [{}, {"network": "u-1"}]}}}
    assert find_network(data, "u-1") is net and find_network(data, "net1") is net
    assert find_network(data, "net2") is None and find_network(data, None) is None
    assert nic_users(data, net) == [("a", 1), ("b", 0)]
