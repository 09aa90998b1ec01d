"""RAPI users: Ganeti's users file and HTTP Basic authentication.

The file has one user per line, ``name password [option,...]``; ``#`` starts a
comment. A password is cleartext, ``{cleartext}text`` or ``{HA1}md5hex`` where the
hash is ``md5("name:Ganeti Remote API:password")``. Options are ``read`` and
``write``; a user without options may read.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path

REALM = "Ganeti Remote API"
log = logging.getLogger("genet-rapi")


@dataclass(frozen=True)
class User:
    name: str
    password: str
    options: frozenset[str]

    @property
    def can_write(self) -> bool:
        return "write" in self.options

    def check_password(self, given: str) -> bool:
        scheme, sep, rest = self.password.partition("}")
        if self.password.startswith("{") and sep:
            scheme = scheme[1:].lower()
            if scheme == "cleartext":
                return hmac.compare_digest(rest.encode(), given.encode())
            if scheme == "ha1":
                digest = hashlib.md5(f"{self.name}:{REALM}:{given}".encode()).hexdigest()
                return hmac.compare_digest(rest.lower().encode(), digest.encode())
            return False     # unknown scheme: nobody gets in with it
        return hmac.compare_digest(self.password.encode(), given.encode())


class AuthError(Exception):
    """Why a request's credentials were refused; the message goes back to the client."""


def parse_users(text: str, source: str = "users file") -> dict[str, User]:
    users: dict[str, User] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2 or len(parts) > 3:
            log.warning("%s line %d ignored: expected 'user password [options]'", source, number)
            continue
        words = parts[2].split(",") if len(parts) == 3 else []
        options = frozenset(o.strip().lower() for o in words if o.strip())
        unknown = options - {"read", "write"}
        if unknown:
            log.warning("%s line %d: unknown option(s) %s ignored", source, number, ", ".join(sorted(unknown)))
        users[parts[0]] = User(parts[0], parts[1], options & {"read", "write"})
    return users


class UsersFile:
    """The users file, read at start, on SIGHUP (``reload``) and when its mtime changes."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple | None = None
        self.users: dict[str, User] = {}
        self.reload()

    def _current_stamp(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self) -> None:
        stamp = self._current_stamp()
        try:
            text = self.path.read_text()
        except OSError:
            text = ""
        self.users = parse_users(text, str(self.path))
        self._stamp = stamp
        log.info("read %d RAPI user(s) from %s", len(self.users), self.path)

    def refresh(self) -> None:
        if self._current_stamp() != self._stamp:
            self.reload()

    def authenticate(self, header: str | None) -> User | None:
        """The user an ``Authorization`` header names, None without one; AuthError if wrong."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise AuthError(f"unsupported authentication scheme {scheme!r}; use Basic")
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise AuthError("malformed Basic authorization header") from None
        name, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError("malformed Basic credentials: no ':' between user and password")
        self.refresh()
        user = self.users.get(name)
        if user is None or not user.check_password(password):
            raise AuthError("wrong user name or password")
        return user
