"""What two clusters exchange before a remote export (Ganeti's inter-cluster instance moves).

Clusters of one *domain* share a secret (Ganeti's cluster domain secret, one hex line in
``cluster-domain-secret``). A source cluster proves that it belongs to the domain with a
handshake, an HMAC-SHA1 of Ganeti's handshake message under that secret, and vouches for the
X509 certificate its primary node made for the transfer by signing it with the same secret
(Ganeti's ``X-Ganeti-Signature`` header before the PEM). Every value here is Ganeti's format, so
Ganeti's tools (move-instance) read genet's answers unchanged.
"""
from __future__ import annotations

import datetime
import hmac
import secrets
import time
from hashlib import sha1

from genet import errors, paths

RIE_VERSION = 0                       # Ganeti's remote import/export protocol version
RIE_HANDSHAKE = "Hi, I'm Ganeti"      # what the handshake's HMAC covers, after the version
RIE_CERT_VALIDITY = 24 * 60 * 60      # seconds a transfer's certificate is valid (Ganeti's)
SIGNATURE_HEADER = "X-Ganeti-Signature"
SALT_BYTES = 8                        # Ganeti's GenerateSecret(8): 16 hex characters
SECRET_BYTES = 20                     # the domain secret: 40 hex characters


def sha1_hmac(key: str, message: str, salt: str = "") -> str:
    """Ganeti's Sha1Hmac: HMAC-SHA1 of ``salt + message`` under ``key``, as hex."""
    return hmac.new(key.encode(), (salt + message).encode(), sha1).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(SALT_BYTES)


def domain_secret() -> str:
    """This node's cluster domain secret, made first if there is none (on the cluster's first
    node at init; on the master of a cluster made before genet kept one)."""
    path = paths.cluster_domain_secret()
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if not secret:
        from genet.config import write_atomic
        secret = new_domain_secret()
        write_atomic(path, f"{secret}\n".encode(), mode=0o400)
    return secret


def new_domain_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def checked_domain_secret(text: str) -> str:
    """A secret given to genet (renew-crypto --cluster-domain-secret FILE): one line, as Ganeti
    reads the file (strictly one line of text)."""
    lines = text.strip().splitlines()
    if len(lines) != 1 or not lines[0].strip():
        raise errors.OpPrereqError(f"a cluster domain secret is one line of text, not {len(lines)}",
                                   errors.ECode.INVAL)
    return lines[0].strip()


def upload(secret: str) -> tuple[str, str, int]:
    """upload_file's arguments that make ``secret`` a node's cluster domain secret."""
    import base64
    path = "/" + str(paths.cluster_domain_secret().relative_to(paths.root()))
    return path, base64.b64encode(f"{secret}\n".encode()).decode(), 0o400


def handshake(secret: str) -> list:
    """Ganeti's ComputeRemoteExportHandshake: [version, hmac, salt]."""
    salt = new_salt()
    return [RIE_VERSION, sha1_hmac(secret, f"{RIE_VERSION}:{RIE_HANDSHAKE}", salt), salt]


def key_name(secret: str, name: str) -> list:
    """The name of a transfer's key on its node, vouched for: [name, hmac, salt]."""
    salt = new_salt()
    return [name, sha1_hmac(secret, name, salt), salt]


def sign_certificate(secret: str, cert_pem: str) -> str:
    """Ganeti's SignX509Certificate: the PEM after an ``X-Ganeti-Signature: SALT/HMAC`` line."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    try:
        pem = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(Encoding.PEM).decode()
    except ValueError as err:
        raise errors.OpExecError(f"the transfer certificate is not a PEM certificate: {err}") from None
    salt = new_salt()
    return f"{SIGNATURE_HEADER}: {salt}/{sha1_hmac(secret, pem, salt)}\n\n{pem}"


def create_transfer_key(validity: int) -> list:
    """On a node: a key and self-signed certificate for one transfer, kept in a new directory of
    the crypto keys directory (Ganeti's x509-TIMESTAMP-RANDOM/key and cert); [name, cert PEM].
    The key never leaves the node; the keys whose certificates have expired go."""
    from genet import ssl_utils
    from genet.config import write_atomic
    lifetime = datetime.timedelta(seconds=min(validity, RIE_CERT_VALIDITY))
    key_pem, cert_pem = ssl_utils.self_signed(paths.node_name(), paths.node_name(), lifetime)
    root = paths.crypto_keys_dir()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_expired(root)
    name = f"x509-{time.strftime('%Y-%m-%d_%H_%M_%S')}-{secrets.token_hex(4)}"
    directory = root / name
    directory.mkdir(mode=0o700)
    write_atomic(directory / "key", key_pem, mode=0o400)
    write_atomic(directory / "cert", cert_pem, mode=0o400)
    return [name, cert_pem.decode()]


def _remove_expired(root) -> None:
    """genet's exports are local, so no export removes a key it was prepared for: its directory
    goes once its certificate (at most RIE_CERT_VALIDITY) has expired."""
    import shutil
    for directory in root.glob("x509-*"):
        if time.time() - directory.stat().st_mtime > RIE_CERT_VALIDITY:
            shutil.rmtree(directory, ignore_errors=True)
