"""genet.netguard: which addresses the machine needs, and which dev-cluster subnets keep clear of them.

Everything is read from files and values the tests make; nothing touches the machine."""
from __future__ import annotations

import ipaddress
import json

import pytest

from genet import netguard
from genet.netguard import Needed


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_apt_hosts_come_from_list_and_deb822_files_and_the_proxy(tmp_path):
    """When apt has one-line and deb822 sources, a disabled file and a proxy, the hosts of the
    enabled sources and of the proxy are needed, and nothing else."""
    (tmp_path / "sources.list").write_text("# deb http://commented.example/debian bookworm main\n"
                                           "deb [arch=amd64] http://mirror.example/debian bookworm main\n"
                                           "deb-src https://src.example/debian bookworm main\n"
                                           "deb file:///srv/local ./\n")
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian http://two.example/d\n"
                                      "Suites: bookworm\n\nTypes: deb\nuris: http://security.example/s\n")
    (d / "old.list.disabled-by-farm").write_text("deb http://disabled.example/ bookworm main\n")
    hosts = netguard.apt_hosts([tmp_path / "sources.list", d],
                               apt_config='Acquire::http::Proxy "http://proxy.example:3142/";\n')
    assert set(hosts) == {"mirror.example", "src.example", "deb.debian.org", "two.example", "security.example",
                          "proxy.example"}
    assert hosts["deb.debian.org"] == f"an apt source in {d / 'debian.sources'}"
    assert hosts["proxy.example"] == "apt's proxy"


def test_pip_hosts_default_to_pypi_and_follow_config_and_environment(tmp_path):
    """When pip has no index-url, PyPI is needed; extra indexes add hosts; file: indexes add none;
    PIP_INDEX_URL replaces the configured index."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = file:///opt/pypi/simple https://extra.example/simple\n")
    assert set(netguard.pip_hosts([conf], env={})) == {"pypi.org", "files.pythonhosted.org", "extra.example"}
    conf.write_text("[global]\nindex-url = https://devpi.example/root/simple\n")
    assert set(netguard.pip_hosts([conf], env={})) == {"devpi.example"}
    env = {"PIP_INDEX_URL": "http://env.example/simple", "PIP_EXTRA_INDEX_URL": "http://x1.example/ http://x2.example/"}
    assert set(netguard.pip_hosts([conf], env=env)) == {"env.example", "x1.example", "x2.example"}


def test_npm_and_proxy_hosts(tmp_path):
    """npm's registry is registry.npmjs.org unless an npmrc or npm_config_registry says otherwise;
    proxies in the environment are needed too."""
    assert netguard.npm_hosts([], env={}) == {"registry.npmjs.org": "npm's registry"}
    rc = tmp_path / "npmrc"
    rc.write_text("fund=false\nregistry=https://npm.example/\n")
    assert set(netguard.npm_hosts([rc], env={})) == {"npm.example"}
    assert set(netguard.npm_hosts([rc], env={"npm_config_registry": "http://env.example/"})) == {"env.example"}
    assert set(netguard.proxy_hosts({"HTTPS_PROXY": "http://p.example:8080", "no_proxy": "x"})) == {"p.example"}


def test_needed_addresses_merge_reasons_per_address_and_go_on_without_dns():
    """When several hosts share one address, it is needed once with every reason; a name that does
    not resolve is reported and left out."""
    answers = {"deb.debian.org": ["203.0.113.80"], "pypi.org": ["203.0.113.80", "2001:db8::1"]}

    def resolve(host):
        if host not in answers:
            raise OSError("Name or service not known")
        return answers[host]
    warnings = []
    needed = netguard.needed_addresses({"deb.debian.org": "an apt source", "pypi.org": "PyPI",
                                        "gone.example": "a pip index"},
                                       ["10.255.255.53", "::1"], ["192.0.2.1"], resolve, warnings.append)
    assert [str(n) for n in needed] == [
        "10.255.255.53 (DNS resolver in /etc/resolv.conf)", "192.0.2.1 (the default gateway)",
        "203.0.113.80 (deb.debian.org, an apt source; pypi.org, PyPI)"]
    assert warnings == ["cannot resolve gone.example (a pip index): Name or service not known; going on without it"]


def test_resolvers_and_default_gateways(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nnameserver 10.255.255.53\nsearch example\n nameserver 10.0.0.2\n")
    assert netguard.resolvers(conf) == ["10.255.255.53", "10.0.0.2"]
    routes = json.dumps([{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
                         {"dst": "default", "dev": "wg0"}])
    assert netguard.default_gateways(routes) == ["192.0.2.1"]


ADDRS = json.dumps([{"ifname": "lo", "addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]},
                    {"ifname": "gnt-br-aaaaaa", "addr_info": [{"local": "203.0.113.1", "prefixlen": 27}]}])
ROUTES = json.dumps([{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
                     {"dst": "203.0.113.0/27", "dev": "gnt-br-aaaaaa", "protocol": "kernel"},
                     {"dst": "203.0.113.200", "gateway": "192.0.2.1", "dev": "eth0"}])
REGISTRY = Needed(ipaddress.IPv4Address("203.0.113.80"), "deb.debian.org, an apt source")


def test_free_subnet_skips_other_clusters_needed_addresses_and_routes():
    """When one /27 holds another cluster and another a registry, the lowest /27 clear of both is
    chosen; a host route elsewhere in the range rules out its /27 too."""
    used = netguard.used_networks(ADDRS, ROUTES)
    assert netguard.free_subnet([REGISTRY], used) == net("203.0.113.32/27")
    assert netguard.free_subnet([REGISTRY], used, prefix=25) is None           # .200 is in the upper half
    assert netguard.free_subnet([], netguard.used_networks(ADDRS, "[]"), prefix=25) == net("203.0.113.128/25")
    taken = used + [(net("203.0.113.32/27"), "x"), (net("203.0.113.96/27"), "y"), (net("203.0.113.128/26"), "z"),
                    (net("203.0.113.224/27"), "w")]
    assert netguard.free_subnet([REGISTRY], taken) is None


def test_a_subnet_holding_a_needed_address_is_refused_with_its_host():
    """When the requested subnet contains a registry's address, the refusal names the address and
    its host; the cluster's own bridge does not count against it."""
    problems = netguard.conflicts(net("203.0.113.64/27"), [REGISTRY], [])
    assert problems == ["it contains 203.0.113.80 (deb.debian.org, an apt source): routing it into a "
                        "dev-cluster bridge would cut this machine off"]
    assert netguard.conflicts(net("203.0.113.0/24"), [REGISTRY], [])
    own = netguard.used_networks(ADDRS, ROUTES, skip_links=["gnt-br-aaaaaa"])
    assert netguard.conflicts(net("203.0.113.0/27"), [REGISTRY], own) == []
    other = netguard.conflicts(net("203.0.113.0/27"), [], netguard.used_networks(ADDRS, ROUTES))
    assert other == ["it overlaps 203.0.113.1/27 on gnt-br-aaaaaa (another dev cluster?)"]


@pytest.mark.parametrize("output, why", [
    ("E: Unable to locate package busybox-statik\n", "package busybox-statik is not in this machine's apt sources"),
    ("E: Package 'foo' has no installation candidate\n", "package foo is not in this machine's apt sources"),
    ("E: Failed to fetch http://deb.debian.org/x.deb  Temporary failure resolving 'deb.debian.org'\n",
     "the package source deb.debian.org cannot be resolved (no DNS?)"),
    ("E: Failed to fetch http://deb.debian.org/x.deb  Could not connect to deb.debian.org:80 (203.0.113.80) - "
     "connect (113: No route to host)\n",
     "the package source is unreachable over the network: ROUTE(203.0.113.80)"),
    ("W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Could not connect to "
     "deb.debian.org:80 (203.0.113.80) - connect (101: Network is unreachable)\nE: No packages found\n",
     "the package source is unreachable over the network: ROUTE(203.0.113.80)"),
])
def test_a_failed_download_says_whether_the_network_or_the_package_is_missing(output, why):
    from genet_dev.testguest import explain_apt_failure
    assert explain_apt_failure(output, route=lambda a: f"ROUTE({a})").startswith(why)
