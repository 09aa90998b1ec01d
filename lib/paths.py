"""Every file genet touches, below one root prefix.

A node's state lives under ``$GENET_ROOT`` (default ``/``), so several nodes of a
dev cluster, each with its own root, can share one machine.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Iterator

_acting = threading.local()      # see acting_as


def root() -> Path:
    override = getattr(_acting, "node", None)
    return override[0] if override else Path(os.environ.get("GENET_ROOT", "/"))


@contextlib.contextmanager
def acting_as(node_root: Path, name: str) -> Iterator[None]:
    """This thread is node ``name`` with its state below ``node_root`` for a while: several nodes
    of one process (in-process tests, simulators) each run their own noded procedures."""
    previous = getattr(_acting, "node", None)
    _acting.node = (Path(node_root), name)
    try:
        yield
    finally:
        _acting.node = previous


def data_dir() -> Path:
    return root() / "var/lib/genet"


def run_dir() -> Path:
    return root() / "var/run/genet"


def log_dir() -> Path:
    return root() / "var/log/genet"


def config_file() -> Path:
    return data_dir() / "config.data"


def queue_db() -> Path:
    return data_dir() / "queue.db"


def master_epoch_file() -> Path:
    """The newest master epoch this node was fenced with (see genet.config.master_epoch)."""
    return data_dir() / "master_epoch"


def master_contact_file() -> Path:
    """Touched at each heartbeat of the master: its age tells genet-noded it was cut off. In the
    run directory, so a reboot (which stops every guest) forgets it."""
    return run_dir() / "master-contact"


def cluster_cert() -> Path:
    """Cluster certificate and key (PEM): identity of every node for mutual TLS."""
    return data_dir() / "server.pem"


def ssconf_file(key: str) -> Path:
    return data_dir() / f"ssconf_{key}"


def master_socket() -> Path:
    return run_dir() / "socket/master.sock"


def pid_file(daemon: str) -> Path:
    return run_dir() / f"{daemon}.pid"


def log_file(daemon: str) -> Path:
    return log_dir() / f"{daemon}.log"


def rapi_users_file() -> Path:
    """RAPI users (Ganeti's format), copied to every master candidate by redist-conf."""
    return data_dir() / "rapi/users"


def queue_drain_file() -> Path:
    return data_dir() / "queue/drain"


def hosts_file() -> Path | None:
    """Extra name→address table consulted before DNS (``GENET_HOSTS``)."""
    value = os.environ.get("GENET_HOSTS")
    return Path(value) if value else None


def node_name() -> str:
    """This node's name: ``$GENET_HOSTNAME``, else ROOT/etc/genet/hostname, else the host name."""
    override = getattr(_acting, "node", None)
    if override:
        return override[1]
    name = os.environ.get("GENET_HOSTNAME")
    if name:
        return name
    try:
        return (root() / "etc/genet/hostname").read_text().strip() or socket.gethostname()
    except OSError:
        return socket.gethostname()


def ensure_dirs() -> None:
    for d in (data_dir(), run_dir() / "socket", log_dir(), data_dir() / "queue"):
        d.mkdir(parents=True, exist_ok=True, mode=0o750)
