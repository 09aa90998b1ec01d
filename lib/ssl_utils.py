"""The cluster certificate: one self-signed key pair that every node holds.

Nodes talk to each other with mutual TLS where both sides present this
certificate and trust nothing else, so a peer without it fails the handshake.

Renewal (gnt-cluster renew-crypto) never leaves two nodes without a certificate in common: the
new one is first *staged* beside the current one (``server.pem.next``), which every node then
trusts too; then each node *switches* (the current one becomes ``server.pem.old``, still
trusted, and the new one is presented); finally the old one is *retired*. The TLS contexts here
read the files again whenever they change, so no daemon restarts.
"""
from __future__ import annotations

import datetime
import hashlib
import ssl
from pathlib import Path
from typing import Callable

from genet import errors

CLUSTER_CN = "genet-cluster"


def generate_cluster_cert(path: Path, cluster_name: str, days: int = 5 * 365, common_name: str = CLUSTER_CN) -> None:
    """Write a new key and self-signed certificate (PEM, key first) to ``path`` (the cluster's, or
    with another ``common_name`` the RAPI's or SPICE's)."""
    from genet.config import write_atomic
    key_pem, cert_pem = self_signed(common_name, cluster_name, datetime.timedelta(days=days))
    write_atomic(path, key_pem + cert_pem, mode=0o600)


def self_signed(common_name: str, organization: str, lifetime: datetime.timedelta) -> tuple[bytes, bytes]:
    """A new key and a certificate for it signed by itself, valid for ``lifetime`` from now (and
    since a day ago, for clocks behind): (key PEM, certificate PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def rapi_cert() -> Path:
    """The RAPI's own certificate (Ganeti's rapi.pem) once renew-crypto made or installed one;
    until then the RAPI presents the cluster certificate."""
    from genet import paths
    own = paths.data_dir() / "rapi.pem"
    return own if own.exists() else paths.cluster_cert()


# --- renewal: staged, switched, retired ----------------------------------------------

def staged(path: Path) -> Path:
    """The new certificate every node trusts before any presents it."""
    return path.with_name(path.name + ".next")


def retired(path: Path) -> Path:
    """The previous certificate, still trusted until the renewal has reached every node."""
    return path.with_name(path.name + ".old")


def trusted(path: Path) -> list[Path]:
    """The certificates a peer may present: the current one, a staged and a previous one."""
    return [p for p in (path, staged(path), retired(path)) if p.exists()]


def check_pem(pem: str, need_key: bool = True) -> dict:
    """A certificate (and its key) given as PEM text, checked: its fingerprint and validity;
    CertificateError names what is wrong (Ganeti's _ReadAndVerifyCert)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as err:
        raise errors.CertificateError(f"not a PEM certificate: {err}") from None
    if need_key:
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError) as err:
            raise errors.CertificateError(f"no usable private key beside the certificate: {err}") from None
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(serialization.Encoding.PEM, pub) != \
                cert.public_key().public_bytes(serialization.Encoding.PEM, pub):
            raise errors.CertificateError("the private key does not belong to the certificate")
    return _info(cert)


def stage(path: Path, pem: str) -> dict:
    """Step 1 on a node: keep the new certificate beside the current one (trusted from now)."""
    from genet.config import write_atomic
    info = check_pem(pem)
    write_atomic(staged(path), pem.encode(), mode=0o600)
    return info


def switch(path: Path, fingerprint: str) -> bool:
    """Step 2: present the staged certificate (the one with ``fingerprint``); keep the current one
    trusted as the previous. Repeating it after it happened is harmless."""
    if cert_info(path)["fingerprint"] == fingerprint:
        return True
    if not staged(path).exists() or cert_info(staged(path))["fingerprint"] != fingerprint:
        raise errors.CertificateError(f"no staged certificate {fingerprint[:16]}... on this node")
    from genet.config import write_atomic
    write_atomic(retired(path), path.read_bytes(), mode=0o600)
    staged(path).replace(path)
    return True


def retire(path: Path) -> bool:
    """Step 3: trust only the current certificate again."""
    retired(path).unlink(missing_ok=True)
    staged(path).unlink(missing_ok=True)
    return True


REPLICATION_CN = "genet-replication"


def issue_replication_creds(cluster_pem: Path, directory: Path, days: int = 365) -> Path:
    """QEMU's TLS credentials directory for disk replication, made once per node.

    GnuTLS will not use a CA certificate as a server's, so each node issues itself
    a leaf certificate (CN ``genet-replication``) signed by the cluster key; the
    peers trust the cluster certificate as CA. Returns ``directory``.
    """
    from genet.config import write_atomic

    ca_pem = ca_certificates([cluster_pem])
    if (directory / "ca-cert.pem").exists() and (directory / "ca-cert.pem").read_bytes() == ca_pem:
        return directory
    key_pem, leaf_pem = sign_leaf(cluster_pem, REPLICATION_CN, days)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for role in ("server", "client"):
        write_atomic(directory / f"{role}-key.pem", key_pem, mode=0o600)
        write_atomic(directory / f"{role}-cert.pem", leaf_pem)
    write_atomic(directory / "ca-cert.pem", ca_pem)
    return directory


def sign_leaf(cluster_pem: Path, common_name: str, days: int, ips: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """A new key and a certificate for it signed by the cluster key, for TLS peers that check
    names or refuse a CA certificate as a leaf (GnuTLS, Go): server and client use, a SAN of
    ``common_name`` and of each address in ``ips``. (key PEM, certificate PEM)"""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pem = cluster_pem.read_bytes()
    ca_cert = x509.load_pem_x509_certificate(pem)
    ca_key = serialization.load_pem_private_key(pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    names = [x509.DNSName(common_name), *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)]
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, leaf.public_bytes(serialization.Encoding.PEM)


def ca_certificates(paths: list[Path]) -> bytes:
    """The certificates alone (no keys) of the PEM files ``paths``, one after the other: a CA
    file for programs that read every PEM block of it as a certificate (GnuTLS, etcd)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    return b"".join(x509.load_pem_x509_certificate(p.read_bytes()).public_bytes(serialization.Encoding.PEM)
                    for p in paths)


def cert_info(path: Path) -> dict:
    """Fingerprint and validity of the certificate in ``path`` (for verify and info)."""
    from cryptography import x509
    try:
        data = path.read_bytes()
    except OSError as err:
        raise errors.CertificateError(f"cannot read certificate {path}: {err}") from None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as err:
        raise errors.CertificateError(f"certificate {path} is invalid: {err}") from None
    return _info(cert)


def _info(cert) -> dict:
    from cryptography.hazmat.primitives.serialization import Encoding
    return {
        "fingerprint": hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        "not_before": cert.not_valid_before_utc.timestamp(),
        "not_after": cert.not_valid_after_utc.timestamp(),
    }


def client_context(path: Path) -> ssl.SSLContext:
    """TLS client context presenting the cluster certificate and trusting only it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False          # nodes are addressed by IP; trust is the pinned cert
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(path)
        for pem in trusted(path):
            ctx.load_verify_locations(pem)
    except (OSError, ssl.SSLError) as err:
        raise errors.CertificateError(f"cannot load cluster certificate {path}: {err}") from None
    return ctx


def server_context_factory(path: Path | Callable[[], Path], require_client: bool = True):
    """Twisted context factory presenting the certificate in ``path`` (or the one a callable
    names): noded's requires a client certificate it trusts (``trusted``), the RAPI's
    (``require_client=False``) asks none. It reads the files again when they change, so a
    renewal takes effect on the next connection."""
    from twisted.internet.interfaces import IOpenSSLContextFactory
    from zope.interface import implementer

    @implementer(IOpenSSLContextFactory)
    class Reloading:
        def __init__(self):
            self._stamp, self._options = None, None

        def getContext(self):    # noqa: N802 (Twisted's name), once per connection
            current = path() if callable(path) else path
            files = trusted(current) if require_client else [current]
            stamp = [(str(p), p.stat().st_mtime_ns) for p in files]
            if stamp != self._stamp:
                self._options, self._stamp = _options(current, files, require_client), stamp
            return self._options.getContext()
    return Reloading()


def _options(path: Path, trusted_files: list[Path], require_client: bool):
    from OpenSSL import crypto
    from twisted.internet import ssl as tssl

    pem = path.read_bytes()
    key = crypto.load_privatekey(crypto.FILETYPE_PEM, pem)
    cert = crypto.load_certificate(crypto.FILETYPE_PEM, pem)
    if not require_client:
        return tssl.CertificateOptions(privateKey=key, certificate=cert, raiseMinimumTo=tssl.TLSVersion.TLSv1_2)
    cas = [crypto.load_certificate(crypto.FILETYPE_PEM, p.read_bytes()) for p in trusted_files]
    return tssl.CertificateOptions(
        privateKey=key, certificate=cert, verify=True, caCerts=cas,
        requireCertificate=True, raiseMinimumTo=tssl.TLSVersion.TLSv1_2)
