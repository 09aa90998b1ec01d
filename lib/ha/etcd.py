"""The leadership store on a real etcd (genet.ha.store.Store), through etcd3gw and etcd's JSON
gateway over HTTPS.

A node asks its own etcd member only: that member answers when it is with the majority and
raises StoreUnavailable when it is not, which is exactly what the node must know about itself.
Both sides present the cluster certificate's key (the client the cluster certificate itself, the
member a leaf signed by it, see genet.ha.etcd_member) and trust nothing else.

The epoch key exists only once an epoch of 1 or more was written (by a claim, a hand-over or
seed_epoch); its absence means epoch 0. So a claim compares "absent" for epoch 0 and the value
otherwise, and never needs to read first."""
from __future__ import annotations

import base64
import contextlib
import math
from pathlib import Path
from typing import Any, Iterator

import etcd3gw
import requests
from requests.adapters import HTTPAdapter

from genet import ssl_utils
from genet.ha.store import EPOCH_KEY, MASTER_KEY, Leader, StoreUnavailable

# seconds one request may take: connecting, and each wait for the answer. A member cut off from
# its majority never answers a linearizable request (it waits for its own request timeout,
# 5 s + 2 election timeouts), so it is this that makes such a member report itself unavailable.
TIMEOUT = 1.0
# etcd's answer to a lease it does not know (expired or revoked)
LEASE_NOT_FOUND = "requested lease not found"


class _PinnedTLS(HTTPAdapter):
    """HTTPS with the cluster's TLS context: members are addressed by IP and the trust is the
    pinned cluster certificate, so no host name is checked (as in genet's own RPC)."""

    def __init__(self, cert: Path):
        self._context = ssl_utils.client_context(cert)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(ssl_context=self._context, assert_hostname=False)
        super().init_poolmanager(*args, **kwargs)


def connect(host: str, port: int, cert: Path, timeout: float = TIMEOUT) -> etcd3gw.Etcd3Client:
    """An etcd3gw client of the member at ``host``:``port`` presenting the cluster certificate
    ``cert`` (its API path fixed to etcd 3.4's, which spares a round trip per client)."""
    session = requests.Session()
    session.mount("https://", _PinnedTLS(cert))
    return etcd3gw.Etcd3Client(host=host, port=port, protocol="https", session=session,
                               timeout=timeout, api_path="/v3/")


def lease_not_found(err: etcd3gw.exceptions.Etcd3Exception) -> bool:
    """True if etcd refused a request because its lease has expired or was revoked."""
    return LEASE_NOT_FOUND in (err.detail_text or "")


@contextlib.contextmanager
def unavailable_on_error(what: str) -> Iterator[None]:
    """Any failure to get an answer (no connection, timeout, no leader, an error reply, a reply
    that is not etcd's) becomes StoreUnavailable: the caller cannot know, and must act so."""
    try:
        yield
    except etcd3gw.exceptions.Etcd3Exception as err:
        detail = (err.detail_text or "").strip() or type(err).__name__
        raise StoreUnavailable(f"{what}: {detail}") from err
    except (requests.RequestException, ValueError, KeyError) as err:
        raise StoreUnavailable(f"{what}: {err}") from err


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: str) -> str:
    return base64.b64decode(b64).decode()


def _put(key: str, value: str, lease: int | None = None) -> dict:
    request = {"key": _b64(key), "value": _b64(value)}
    if lease is not None:
        request["lease"] = lease
    return {"request_put": request}


def epoch_unchanged(epoch: int) -> dict:
    """The compare that holds while the epoch is still ``epoch`` (absent for 0, see above)."""
    if epoch == 0:
        return {"key": _b64(EPOCH_KEY), "target": "VERSION", "result": "EQUAL", "version": 0}
    return {"key": _b64(EPOCH_KEY), "target": "VALUE", "result": "EQUAL", "value": _b64(str(epoch))}


def take_role(node: str, lease: int, epoch: int, vacant: bool) -> dict:
    """One transaction: the master key for ``node`` under ``lease`` and the epoch ``epoch`` + 1,
    if the epoch is still ``epoch`` (and, with ``vacant``, nobody holds the key)."""
    compare = [epoch_unchanged(epoch)]
    if vacant:
        compare.append({"key": _b64(MASTER_KEY), "target": "CREATE", "result": "EQUAL", "create_revision": 0})
    return {"compare": compare,
            "success": [_put(MASTER_KEY, node, lease), _put(EPOCH_KEY, str(epoch + 1))],
            "failure": []}


def leader_of(reply: dict) -> Leader:
    """The Leader in the reply of the transaction that reads both keys (MASTER_KEY first)."""
    master, epoch = ((r["response_range"].get("kvs") or [None])[0] for r in reply["responses"])
    return Leader(node=_text(master["value"]) if master else None,
                  lease=(int(master.get("lease", 0)) or None) if master else None,
                  epoch=int(_text(epoch["value"])) if epoch else 0)


class EtcdStore:
    """The Store on this node's etcd member (host and client port), with the cluster certificate."""

    def __init__(self, host: str, port: int, cert: Path, timeout: float = TIMEOUT):
        self.client = connect(host, port, cert, timeout)

    def _post(self, what: str, path: str, body: dict) -> dict:
        with unavailable_on_error(what):
            return self.client.post(self.client.get_url(path), json=body)

    def grant(self, ttl: float) -> int:
        """etcd counts whole seconds, and raises a TTL below its minimum (1.5 election timeouts,
        rounded up: 2 s with genet's) to that minimum without saying so."""
        return int(self._post("lease grant", "/lease/grant", {"TTL": math.ceil(ttl), "ID": 0})["ID"])

    def keepalive(self, lease: int) -> bool:
        reply = self._post("lease keepalive", "/lease/keepalive", {"ID": lease})
        with unavailable_on_error("lease keepalive"):
            return int(reply["result"].get("TTL", 0)) > 0

    def revoke(self, lease: int) -> None:
        """Revoking a lease that is gone already is no error: the keys it held are gone too."""
        with unavailable_on_error("lease revoke"):
            try:
                self.client.post(self.client.get_url("/kv/lease/revoke"), json={"ID": lease})
            except etcd3gw.exceptions.Etcd3Exception as err:
                if not lease_not_found(err):
                    raise

    def leader(self) -> Leader:
        reply = self._transaction("read the leader", {
            "compare": [], "success": [{"request_range": {"key": _b64(MASTER_KEY)}},
                                       {"request_range": {"key": _b64(EPOCH_KEY)}}], "failure": []})
        with unavailable_on_error("read the leader"):
            return leader_of(reply)

    def claim(self, node: str, lease: int, epoch: int) -> bool:
        return self._take(take_role(node, lease, epoch, vacant=True))

    def hand_over(self, node: str, lease: int, epoch: int) -> bool:
        """The key is put under the new lease: the old master's lease lives on but holds nothing."""
        return self._take(take_role(node, lease, epoch, vacant=False))

    def seed_epoch(self, epoch: int) -> bool:
        """Start the epochs at ``epoch`` (the config's, from manual failovers made before etcd
        ran) unless the store has one already; True if it was written. 0 needs no key."""
        if epoch <= 0:
            return False
        return self._succeeded(self._transaction("seed the epoch", {
            "compare": [epoch_unchanged(0)], "success": [_put(EPOCH_KEY, str(epoch))], "failure": []}))

    def _take(self, txn: dict) -> bool:
        """A lease that expired before the transaction is a refusal, not an outage."""
        with unavailable_on_error("take the master role"):
            try:
                reply = self.client.transaction(txn)
            except etcd3gw.exceptions.Etcd3Exception as err:
                if lease_not_found(err):
                    return False
                raise
        return self._succeeded(reply)

    def _transaction(self, what: str, txn: dict) -> dict:
        with unavailable_on_error(what):
            return self.client.transaction(txn)

    @staticmethod
    def _succeeded(reply: dict) -> bool:
        return bool(reply.get("succeeded", False))    # (the gateway leaves out a false)
