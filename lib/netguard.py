"""The addresses this machine needs, and dev-cluster subnets that keep clear of them.

A dev cluster puts a bridge with an address of its subnet into the root namespace, so the
root namespace routes that whole subnet into the bridge.  If a package registry, a DNS
resolver or the default gateway lies inside it, every download on the machine fails while
the cluster is up (apt, pip and npm all stop with "No route to host").  This module finds
those addresses (the hosts of the apt sources and proxies, pip's indexes, npm's registry,
the resolvers of /etc/resolv.conf, the default gateways), refuses a subnet that contains
one, and picks a free subnet that contains none.  One rule for dev-cluster, the demo, the
tests and the benchmarks.

Everything the rules read (files, environment, commands, name resolution) is passed in,
so the logic runs in tests without touching the machine.
"""
from __future__ import annotations

import configparser
import concurrent.futures
import dataclasses
import ipaddress
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Callable, Iterable, Mapping
from urllib.parse import urlsplit

TEST_NET = ipaddress.IPv4Network("203.0.113.0/24")   # TEST-NET-3: the only range dev clusters use
SUBNET_PREFIX = 27                                     # room for 20 nodes (.11-.30) and the bridge (.1)
RESOLVE_TIMEOUT = 5.0                                  # seconds for all names together
BRIDGE_PREFIX = "gnt-br-"                              # a dev cluster's bridge in the root namespace

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
PIP_CONFIGS = (Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"), Path("~/.pip/pip.conf"),
               Path("~/.config/pip/pip.conf"))
NPM_CONFIGS = (Path("/etc/npmrc"), Path("/usr/etc/npmrc"), Path("/usr/local/etc/npmrc"), Path("~/.npmrc"))
RESOLV_CONF = Path("/etc/resolv.conf")
PYPI_HOSTS = ("pypi.org", "files.pythonhosted.org")   # pip's default index and where it downloads
NPM_DEFAULT_REGISTRY = "registry.npmjs.org"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")


@dataclasses.dataclass(frozen=True)
class Needed:
    """An address the machine must keep reaching, and why (e.g. "deb.debian.org, an apt source")."""
    address: ipaddress.IPv4Address
    what: str

    def __str__(self) -> str:
        return f"{self.address} ({self.what})"


# ---------------------------------------------------------------- hosts of the package sources

def _host(url: str) -> str | None:
    """The host part of a URL; None for local (file:, cdrom:, no host) sources."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme in ("", "file", "cdrom", "copy") or not parts.hostname:
        return None
    return parts.hostname


def _files(paths: Iterable[Path], suffixes: tuple[str, ...] = ()) -> list[Path]:
    """The existing files among ``paths``, directories expanded to their files ending in ``suffixes``."""
    found = []
    for path in paths:
        path = path.expanduser()
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(suffixes))
        elif path.is_file():
            found.append(path)
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def apt_hosts(paths: Iterable[Path] = APT_SOURCES, apt_config: str = "") -> dict[str, str]:
    """Hosts of the apt sources (one-line ``deb`` lists and deb822 ``.sources``) and apt's proxies.

    Only ``*.list`` and ``*.sources`` are read, as apt does (``.disabled`` files are not sources).
    ``apt_config`` is the output of ``apt-config dump`` (for ``Acquire::*::Proxy``).
    """
    hosts: dict[str, str] = {}
    for path in _files(paths, (".list", ".sources")):
        text = _read(path)
        if path.name.endswith(".sources"):
            urls = [u for line in re.findall(r"^URIs:(.*)$", text, re.M | re.I) for u in line.split()]
        else:
            urls = [m.group(1) for m in re.finditer(r"^\s*deb(?:-src)?\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)]
        for url in urls:
            host = _host(url)
            if host:
                hosts.setdefault(host, f"an apt source in {path}")
    for match in re.finditer(r'^Acquire::\w+::Proxy(?:::\S+)?\s+"([^"]+)"', apt_config, re.M):
        host = _host(match.group(1))
        if host:
            hosts.setdefault(host, "apt's proxy")
    return hosts


def pip_hosts(paths: Iterable[Path] = PIP_CONFIGS, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Hosts of pip's index and extra indexes (config files, then PIP_* variables override)."""
    index: str | None = None
    extra: list[str] = []
    config_file = env.get("PIP_CONFIG_FILE")
    for path in _files([*paths, *([Path(config_file)] if config_file else [])]):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(_read(path))
        except configparser.Error:
            continue
        for section in ("global", "install", "download"):
            if parser.has_option(section, "index-url"):
                index = parser.get(section, "index-url").strip()
            if parser.has_option(section, "extra-index-url"):
                extra += parser.get(section, "extra-index-url").split()
    index = env.get("PIP_INDEX_URL", index)
    extra += env.get("PIP_EXTRA_INDEX_URL", "").split()
    hosts: dict[str, str] = {}
    if index is None:
        hosts.update((host, "PyPI, pip's default index") for host in PYPI_HOSTS)
    for url in ([index] if index else []) + extra:
        host = _host(url)
        if host:
            hosts.setdefault(host, "a pip index")
    return hosts


def npm_hosts(paths: Iterable[Path] = NPM_CONFIGS, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The host of npm's registry (npmrc files, then npm_config_registry)."""
    registry = None
    for path in _files(paths):
        for match in re.finditer(r"^\s*registry\s*=\s*(\S+)", _read(path), re.M):
            registry = match.group(1)
    registry = env.get("npm_config_registry") or env.get("NPM_CONFIG_REGISTRY") or registry
    host = _host(registry) if registry else NPM_DEFAULT_REGISTRY
    return {host: "npm's registry"} if host else {}


def proxy_hosts(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    hosts: dict[str, str] = {}
    for name in PROXY_VARIABLES:
        value = env.get(name) or env.get(name.upper())
        host = _host(value if value and "://" in value else f"http://{value}") if value else None
        if host:
            hosts.setdefault(host, f"the proxy in ${name}")
    return hosts


def package_hosts(env: Mapping[str, str] = os.environ, apt_config: str = "") -> dict[str, str]:
    """Every host downloads come from: apt, pip, npm and proxies; host -> why it is needed."""
    hosts: dict[str, str] = {}
    for found in (apt_hosts(apt_config=apt_config), pip_hosts(env=env), npm_hosts(env=env), proxy_hosts(env)):
        for host, what in found.items():
            hosts.setdefault(host, what)
    return hosts


# ---------------------------------------------------------------- resolvers and gateways

def resolvers(path: Path = RESOLV_CONF) -> list[str]:
    return re.findall(r"^\s*nameserver\s+(\S+)", _read(path), re.M)


def default_gateways(route_json: str) -> list[str]:
    """The gateways of the default routes in ``ip -j -4 route show default``."""
    try:
        routes = json.loads(route_json or "[]")
    except ValueError:
        return []
    return [r["gateway"] for r in routes if r.get("gateway")]


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    return address if isinstance(address, ipaddress.IPv4Address) else None


def resolve_all(hosts: Iterable[str], resolve: Callable[[str], list[str]],
                timeout: float = RESOLVE_TIMEOUT) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Resolve the names in parallel within ``timeout``; returns (addresses, errors) by host."""
    hosts = list(hosts)
    found: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    if not hosts:
        return found, failed
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(hosts)))
    futures = {pool.submit(resolve, host): host for host in hosts}
    done, pending = concurrent.futures.wait(futures, timeout=timeout)
    for future in done:
        try:
            found[futures[future]] = future.result()
        except OSError as err:
            failed[futures[future]] = str(err)
    for future in pending:
        failed[futures[future]] = f"no answer within {timeout:.0f} s"
    pool.shutdown(wait=False, cancel_futures=True)
    return found, failed


def resolve_ipv4(host: str) -> list[str]:
    """The IPv4 addresses of ``host`` (a literal address resolves to itself)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)})


def needed_addresses(hosts: Mapping[str, str], nameservers: Iterable[str], gateways: Iterable[str],
                     resolve: Callable[[str], list[str]] = resolve_ipv4,
                     warn: Callable[[str], None] = lambda msg: None) -> list[Needed]:
    """The IPv4 addresses behind ``hosts`` (host -> why) plus the resolvers and gateways.

    A name that does not resolve is reported through ``warn`` and left out: without DNS
    there is nothing to protect, and the cluster may still start."""
    whats: dict[ipaddress.IPv4Address, list[str]] = {}
    for address, what in [*((a, f"DNS resolver in {RESOLV_CONF}") for a in nameservers),
                          *((a, "the default gateway") for a in gateways)]:
        if _ipv4(address):
            whats.setdefault(_ipv4(address), []).append(what)
    found, failed = resolve_all(hosts, resolve)
    for host, error in sorted(failed.items()):
        warn(f"cannot resolve {host} ({hosts[host]}): {error}; going on without it")
    for host in sorted(found):
        for address in filter(None, map(_ipv4, found[host])):
            whats.setdefault(address, []).append(f"{host}, {hosts[host]}")
    return [Needed(address, "; ".join(what)) for address, what in sorted(whats.items())]


def machine_needs(warn: Callable[[str], None] = lambda msg: None) -> list[Needed]:
    """What this machine needs, read from the machine itself."""
    def output(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""
    hosts = package_hosts(apt_config=output("apt-config", "dump"))
    return needed_addresses(hosts, resolvers(), default_gateways(output("ip", "-j", "-4", "route", "show", "default")),
                            warn=warn)


# ---------------------------------------------------------------- subnets

def used_networks(addr_json: str, route_json: str, skip_links: Iterable[str] = ()) -> list[tuple[ipaddress.IPv4Network, str]]:
    """Networks the root namespace already has (addresses from ``ip -j -4 addr``, routes from
    ``ip -j -4 route``, default routes left out), with the link that holds them."""
    skip = set(skip_links)
    used = []
    for link in json.loads(addr_json or "[]"):
        if link.get("ifname") in skip:
            continue
        for addr in link.get("addr_info", []):
            used.append((ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False),
                         f"{addr['local']}/{addr['prefixlen']} on {link.get('ifname')}"))
    for route in json.loads(route_json or "[]"):
        dst = route.get("dst", "default")
        # a kernel route only repeats an address above
        if dst == "default" or route.get("dev") in skip or route.get("protocol") == "kernel":
            continue
        try:
            net = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        used.append((net, f"the route to {dst} via {route.get('dev', '?')}"))
    return used


def conflicts(net: ipaddress.IPv4Network, needed: Iterable[Needed],
              used: Iterable[tuple[ipaddress.IPv4Network, str]]) -> list[str]:
    """Why ``net`` may not be a dev cluster's subnet (empty if it may)."""
    problems = [f"it contains {n}: routing it into a dev-cluster bridge would cut this machine off"
                for n in needed if n.address in net]
    problems += [f"it overlaps {what} (another dev cluster?)" for other, what in used if other.overlaps(net)]
    return problems


def free_subnet(needed: Iterable[Needed], used: Iterable[tuple[ipaddress.IPv4Network, str]],
                prefix: int = SUBNET_PREFIX) -> ipaddress.IPv4Network | None:
    """The lowest /``prefix`` of TEST-NET-3 that overlaps nothing used and contains nothing needed."""
    needed, used = list(needed), list(used)
    for candidate in TEST_NET.subnets(new_prefix=prefix):
        if not conflicts(candidate, needed, used):
            return candidate
    return None


def route_device(address: str) -> str | None:
    """The link the root namespace sends ``address`` through (``ip route get``); None if no route."""
    try:
        proc = subprocess.run(["ip", "-j", "route", "get", address], capture_output=True, text=True, timeout=10)
        routes = json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return routes[0].get("dev") if routes else None


def explain_route(address: str) -> str:
    """Why ``address`` cannot be reached, as far as the routing table tells."""
    dev = route_device(address)
    if dev is None:
        return f"there is no route to {address}"
    if dev.startswith(BRIDGE_PREFIX):
        return (f"the route to {address} goes into {dev}, a dev cluster's bridge: stop that cluster "
                f"(tools/dev-cluster stop --dir DIR) and start it again without --subnet")
    return f"the route to {address} goes through {dev}"
