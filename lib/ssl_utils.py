"""The cluster certificate: one self-signed key pair that every node holds.

Nodes talk to each other with mutual TLS where both sides present this
certificate and trust nothing else, so a peer without it fails the handshake.
"""
from __future__ import annotations

import datetime
import hashlib
import ssl
from pathlib import Path

from genet import errors

CLUSTER_CN = "genet-cluster"


def generate_cluster_cert(path: Path, cluster_name: str, days: int = 5 * 365) -> None:
    """Write a new key and self-signed certificate (PEM, key first) to ``path``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from genet.config import write_atomic

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLUSTER_CN),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_name)])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(CLUSTER_CN)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pem += cert.public_bytes(serialization.Encoding.PEM)
    write_atomic(path, pem, mode=0o600)


REPLICATION_CN = "genet-replication"


def issue_replication_creds(cluster_pem: Path, directory: Path, days: int = 365) -> Path:
    """QEMU's TLS credentials directory for disk replication, made once per node.

    GnuTLS will not use a CA certificate as a server's, so each node issues itself
    a leaf certificate (CN ``genet-replication``) signed by the cluster key; the
    peers trust the cluster certificate as CA. Returns ``directory``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from genet.config import write_atomic

    pem = cluster_pem.read_bytes()
    ca_cert = x509.load_pem_x509_certificate(pem)
    if (directory / "ca-cert.pem").exists() and (directory / "ca-cert.pem").read_bytes() == \
            ca_cert.public_bytes(serialization.Encoding.PEM):
        return directory
    ca_key = serialization.load_pem_private_key(pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, REPLICATION_CN)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(REPLICATION_CN)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for role in ("server", "client"):
        write_atomic(directory / f"{role}-key.pem", key_pem, mode=0o600)
        write_atomic(directory / f"{role}-cert.pem", leaf_pem)
    write_atomic(directory / "ca-cert.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    return directory


def cert_info(path: Path) -> dict:
    """Fingerprint and validity of the certificate in ``path`` (for verify and info)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    try:
        data = path.read_bytes()
    except OSError as err:
        raise errors.CertificateError(f"cannot read certificate {path}: {err}") from None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as err:
        raise errors.CertificateError(f"certificate {path} is invalid: {err}") from None
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
        ctx.load_verify_locations(path)
    except (OSError, ssl.SSLError) as err:
        raise errors.CertificateError(f"cannot load cluster certificate {path}: {err}") from None
    return ctx


def server_context_factory(path: Path):
    """Twisted context factory for noded: requires a client certificate signed by the cluster."""
    from OpenSSL import crypto
    from twisted.internet import ssl as tssl

    pem = path.read_bytes()
    key = crypto.load_privatekey(crypto.FILETYPE_PEM, pem)
    cert = crypto.load_certificate(crypto.FILETYPE_PEM, pem)
    return tssl.CertificateOptions(
        privateKey=key, certificate=cert, verify=True, caCerts=[cert],
        requireCertificate=True, raiseMinimumTo=tssl.TLSVersion.TLSv1_2)
