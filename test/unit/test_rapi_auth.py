"""The RAPI users file and HTTP Basic authentication (genet.rapi.auth)."""
import base64
import hashlib
import logging
import os

import pytest

from genet.rapi.auth import REALM, AuthError, UsersFile, parse_users


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def ha1(user: str, password: str) -> str:
    return hashlib.md5(f"{user}:{REALM}:{password}".encode()).hexdigest()


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users"
    path.write_text(
        "# RAPI users\n"
        "\n"
        "plain   secret1 write          # trailing comment\n"
        "clear   {cleartext}secret2  read\n"
        f"hashed  {{HA1}}{ha1('hashed', 'secret3')} read,write\n"
        "nooption secret4\n")
    return UsersFile(path)


def test_comments_blank_lines_and_options_are_parsed():
    """When the file has comments, blank lines and option lists, each user gets exactly its options."""
    users = parse_users("# only a comment\n\n  a  pw1  \t\n b pw2 read\nc pw3 write,read\n d pw4 WRITE # loud\n")
    assert sorted(users) == ["a", "b", "c", "d"]
    assert users["a"].options == frozenset() and not users["a"].can_write
    assert users["b"].options == {"read"} and not users["b"].can_write
    assert users["c"].options == {"read", "write"} and users["c"].can_write
    assert users["d"].can_write and users["d"].password == "pw4"


def test_bad_lines_are_ignored_with_a_warning_and_the_rest_still_counts(caplog):
    """When a line has one word or too many, it is skipped (logged) and the good lines are kept."""
    caplog.set_level(logging.WARNING, logger="genet-rapi")
    users = parse_users("lonely\ngood pw write\ntoo many words here\n", source="users")
    assert list(users) == ["good"]
    assert "users line 1 ignored" in caplog.text and "users line 3 ignored" in caplog.text


def test_unknown_options_are_dropped_and_do_not_grant_write(caplog):
    """When a line names an unknown option, only read/write survive, with a warning."""
    caplog.set_level(logging.WARNING, logger="genet-rapi")
    users = parse_users("x pw admin,read\ny pw ,,\n")
    assert users["x"].options == {"read"} and not users["x"].can_write
    assert users["y"].options == frozenset()
    assert "unknown option(s) admin" in caplog.text


def test_a_later_line_for_the_same_user_wins():
    users = parse_users("u first read\nu second write\n")
    assert users["u"].password == "second" and users["u"].can_write


@pytest.mark.parametrize("user, password, ok", [
    ("plain", "secret1", True), ("plain", "secret", False), ("plain", "secret1 ", False),
    ("clear", "secret2", True), ("clear", "{cleartext}secret2", False),
    ("hashed", "secret3", True), ("hashed", "wrong", False),
    ("hashed", ha1("hashed", "secret3"), False),     # the hash itself is not the password
])
def test_cleartext_and_ha1_passwords(users_file, user, password, ok):
    """When the password matches its stored form (cleartext, {cleartext} or {HA1}), the user is returned."""
    if ok:
        assert users_file.authenticate(basic(user, password)).name == user
    else:
        with pytest.raises(AuthError, match="wrong user name or password"):
            users_file.authenticate(basic(user, password))


def test_ha1_hash_is_case_insensitive_and_tied_to_the_user_name():
    """When the HA1 hash was made for another user name, the same password does not work."""
    users = parse_users(f"alice {{ha1}}{ha1('alice', 'pw').upper()}\nbob {{HA1}}{ha1('alice', 'pw')}\n")
    assert users["alice"].check_password("pw")
    assert not users["bob"].check_password("pw")


def test_unknown_password_scheme_lets_nobody_in():
    users = parse_users("u {SHA}abc\n")
    assert not users["u"].check_password("abc") and not users["u"].check_password("{SHA}abc")


def test_password_containing_a_colon_is_kept_whole(tmp_path):
    """When the password has a colon, Basic splits at the first one only."""
    path = tmp_path / "users"
    path.write_text("u pa:ss:word write\n")
    assert UsersFile(path).authenticate(basic("u", "pa:ss:word")).can_write


def test_no_header_means_anonymous(users_file):
    assert users_file.authenticate(None) is None
    assert users_file.authenticate("") is None


@pytest.mark.parametrize("header, message", [
    ("Digest username=plain", "unsupported authentication scheme 'Digest'"),
    ("Bearer abc", "unsupported authentication scheme 'Bearer'"),
    ("Basic", "no ':' between user and password"),        # scheme with nothing after it
    ("Basic dXNlcjpwdw", "malformed Basic authorization header"),     # padding missing
    ("Basic !!!notbase64", "malformed Basic authorization header"),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "malformed Basic authorization header"),
    ("Basic " + base64.b64encode(b"plainsecret1").decode(), "no ':' between user and password"),
    (basic("plain", "nope"), "wrong user name or password"),
    (basic("ghost", "secret1"), "wrong user name or password"),
    (basic("", ""), "wrong user name or password"),
])
def test_bad_authorization_headers_are_refused_with_the_reason(users_file, header, message):
    """When the header is not valid Basic or names a wrong user or password, AuthError says why."""
    with pytest.raises(AuthError, match=message.replace("(", r"\(")):
        users_file.authenticate(header)


def test_scheme_is_case_insensitive(users_file):
    token = base64.b64encode(b"plain:secret1").decode()
    assert users_file.authenticate(f"basic {token}").name == "plain"
    assert users_file.authenticate(f"  BASIC   {token}  ").name == "plain"


def test_file_is_reread_when_its_mtime_changes(tmp_path):
    """When the file changes on disk, the next authentication sees the new users without a SIGHUP."""
    path = tmp_path / "users"
    path.write_text("old pw write\n")
    users = UsersFile(path)
    assert users.authenticate(basic("old", "pw")).name == "old"
    path.write_text("new pw2 read\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert users.authenticate(basic("new", "pw2")).name == "new"
    with pytest.raises(AuthError):
        users.authenticate(basic("old", "pw"))


def test_same_size_rewrite_within_one_mtime_tick_is_seen_through_the_inode(tmp_path):
    """When the file is replaced (rename over it) with the same size and mtime, the new inode counts."""
    path = tmp_path / "users"
    path.write_text("aaa pw write\n")
    users = UsersFile(path)
    st = os.stat(path)
    replacement = tmp_path / "users.new"
    replacement.write_text("bbb pw write\n")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(replacement, path)
    assert users.authenticate(basic("bbb", "pw")).name == "bbb"


def test_unchanged_file_is_not_reread(tmp_path, monkeypatch):
    path = tmp_path / "users"
    path.write_text("u pw\n")
    users = UsersFile(path)
    calls = []
    monkeypatch.setattr(users, "reload", lambda: calls.append(1))
    users.authenticate(basic("u", "pw"))
    users.refresh()
    assert calls == []


def test_missing_file_means_no_users_and_appears_later(tmp_path):
    """When the file does not exist, nobody can log in; once it is created, its users can."""
    path = tmp_path / "users"
    users = UsersFile(path)
    assert users.users == {}
    with pytest.raises(AuthError):
        users.authenticate(basic("u", "pw"))
    path.write_text("u pw write\n")
    assert users.authenticate(basic("u", "pw")).can_write


def test_reload_reads_the_file_again(tmp_path):
    """An explicit reload (what SIGHUP does) sees a change even when the stamp looks the same."""
    path = tmp_path / "users"
    path.write_text("u pw\n")
    users = UsersFile(path)
    st = os.stat(path)
    path.write_text("v pw\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    users.reload()
    assert list(users.users) == ["v"]
