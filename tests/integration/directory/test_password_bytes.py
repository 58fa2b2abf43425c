"""Passwords reach the directory byte for byte (issue 7, item 3), on both lab directories.

ldap3 runs SASLprep over a ``str`` password: ``²`` becomes ``2``, NBSP a space, a soft
hyphen disappears, and Arabic next to Latin letters raises before anything is sent. Each
test below sets or changes a password through the connector and then proves what was
stored by binding as the user with raw ldap3 and the exact UTF-8 bytes typed — and, where
SASLprep would have changed the text, that the prepared spelling does *not* work.
"""

from __future__ import annotations

import secrets
import unicodedata
from pathlib import Path

import pytest
from ldap3 import Connection
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.sasl.sasl import sasl_prep

from connectors.base import InvalidInput, Rejected
from connectors.ldap import LdapConnector
from runner.secrets import SecretStore
from runner.service import Firstline
from tests.integration.directory import test_directory_runbooks as _runbooks
from tests.integration.directory.helpers import LAB, Directory, new_password, target_config

app = _runbooks.app  # the open_app() fixture over the lab inventory, per flavour

# Every variant keeps an ASCII capital, digit and symbol so that AD complexity accepts it.
VARIANTS = {
    "superscript": "Sommet lointain ²² orage",
    "fraction": "Kv-9 un ½ verre de lait",
    "ligature": "Kv-9 la ﬁne ﬂeur du jardin",
    "fullwidth": "Kv-9 ＦＵＬＬＷＩＤＴＨ letters",
    "nfc": unicodedata.normalize("NFC", "Kv-9 café crème brûlée"),
    "nfd": unicodedata.normalize("NFD", "Kv-9 café crème brûlée"),
    "arabic_ligature": "Kv-9 ﷺ and latin words",  # SASLprep raises (bidi), ldap3 never sends
    "arabic_only": "ﷺﷺ مرحبا بالعالم ٩٩",
    "emoji": "Kv-9 🐢🌷 slow tulips",
    "nbsp": "Kv-9\u00a0non\u00a0breaking\u00a0spaces",
    "em_space": "Kv-9\u2003em\u2003spaced words",
    "soft_hyphen": "Kv-9 soft\u00adhyphen\u00adated",
}


def unique(pw: str) -> str:
    """The variant plus a random ASCII tail (history of 3 on both lab directories).

    The tail always holds a lowercase letter and a digit: AD's complexity rule (3 of upper,
    lower, digit, symbol, other Unicode; Samba ``check_password_quality``) counts none of the
    Arabic-only variant's characters but "other", and a hex draw is all digits 6 % of the time.
    """
    return f"{pw} {secrets.token_hex(3)}k7"


def bind_bytes(d: Directory, user: str, password: str) -> bool:
    """A raw ldap3 simple bind as *user* with the exact UTF-8 bytes of *password*."""
    c = Connection(d.server, d.dn(user), password.encode("utf-8"))
    try:
        return bool(c.bind())
    finally:
        c.unbind()


def prepared(password: str) -> str | None:
    """What ldap3 would have sent for a ``str`` (None when it raises instead)."""
    try:
        return str(sasl_prep(password))
    except LDAPException:
        return None


def assert_stored_exactly(d: Directory, user: str, typed: str) -> None:
    assert bind_bytes(d, user, typed), "the password as typed does not work"
    prep = prepared(typed)
    if prep is not None and prep.encode() != typed.encode():
        assert not bind_bytes(d, user, prep), "the SASLprep spelling works: the stored value was altered"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_reset_stores_the_typed_bytes(directory: Directory, variant: str) -> None:
    user, _ = directory.create_user()
    typed = unique(VARIANTS[variant])
    out = directory.conn.run("reset_password", {"user": user, "new_password": typed, "must_change": False}, timeout=30)
    assert out["must_change"] is False
    assert_stored_exactly(directory, user, typed)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_change_sends_old_and_new_as_typed(directory: Directory, variant: str) -> None:
    """The current password (bind / delete value) and the new one (exop / add value) both as typed."""
    user, _ = directory.create_user()
    old = unique(VARIANTS[variant])
    directory.conn.run("reset_password", {"user": user, "new_password": old, "must_change": False}, timeout=30)
    assert bind_bytes(directory, user, old)
    # the new password is a *different* unusual variant, so both directions are exercised
    names = sorted(VARIANTS)
    new = unique(VARIANTS[names[(names.index(variant) + 1) % len(names)]])
    out = directory.conn.run("change_password", {"user": user, "old_password": old, "new_password": new}, timeout=30)
    assert out["changed"] is True
    assert_stored_exactly(directory, user, new)
    if directory.flavor == "openldap":  # AD accepts the previous password for an hour (old password period)
        assert not bind_bytes(directory, user, old)


def test_a_current_password_with_superscripts_is_correct(directory: Directory) -> None:
    """The issue's case: a current password containing ² was 'not correct' (and counted a failure)."""
    user, _ = directory.create_user()
    old = unique("Sommet lointain ²² orage")
    directory.conn.run("reset_password", {"user": user, "new_password": old, "must_change": False}, timeout=30)
    new = new_password()
    directory.conn.run("change_password", {"user": user, "old_password": old, "new_password": new}, timeout=30)
    assert bind_bytes(directory, user, new)


def test_nfc_and_nfd_are_different_stored_passwords(directory: Directory) -> None:
    """Stored as typed: the NFD spelling does not open an account whose password was set in NFC."""
    user, _ = directory.create_user()
    nfc = unicodedata.normalize("NFC", unique("Kv-9 café crème brûlée"))
    directory.conn.run("reset_password", {"user": user, "new_password": nfc, "must_change": False}, timeout=30)
    assert bind_bytes(directory, user, nfc)
    assert not bind_bytes(directory, user, unicodedata.normalize("NFD", nfc))


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ("Kv-9 a fine long password\x00 tail", None),  # NUL: refused by the input check
        ("Kv-9 a fine long password\x01 tail", "invalid_characters"),
        ("Kv-9 a fine long password\n tail", "invalid_characters"),
        ("Kv-9 a fine long password \ud800 tail", "invalid_characters"),  # lone surrogate
        ("Kv-9 " + "long " * 40, "too_long"),
    ],
)
def test_passwords_the_directory_cannot_take_are_refused_clearly(
    directory: Directory, candidate: str, reason: str | None
) -> None:
    user, pw = directory.create_user()
    before = directory.state_attrs(user)
    for action, inputs in (
        ("reset_password", {"user": user, "new_password": candidate}),
        ("change_password", {"user": user, "old_password": pw, "new_password": candidate}),
    ):
        with pytest.raises((InvalidInput, Rejected)) as err:
            directory.conn.run(action, inputs, timeout=30)
        assert err.value.reason != "unreachable"
        if reason is not None:
            assert err.value.reason == reason and err.value.requester_action is True
        assert candidate not in str(err.value)
        assert "\ud800" not in str(err.value)
    assert directory.state_attrs(user) == before and directory.bind_ok(user, pw)


@pytest.mark.parametrize("old", ["Kv-9 \ud800 surrogate", ""])
def test_a_current_password_that_cannot_be_sent_is_refused_without_a_bind(directory: Directory, old: str) -> None:
    """Nothing is sent: no failed sign-in is counted, the account is untouched (no anonymous bind)."""
    user, pw = directory.create_user()
    before = directory.state_attrs(user)
    with pytest.raises(InvalidInput) as err:
        directory.conn.run(
            "change_password", {"user": user, "old_password": old, "new_password": new_password()}, timeout=30
        )
    assert err.value.requester_action is True and err.value.reason in ("invalid_characters", "password_missing")
    assert directory.state_attrs(user) == before and directory.bind_ok(user, pw)


def test_the_service_account_binds_with_its_exact_bytes(directory: Directory, tmp_path: Path) -> None:
    """A service password with ², NBSP and Arabic next to Latin (SASLprep would alter or refuse it)."""
    user, _ = directory.create_user()
    svc_pw = unique("Svc-9 ²² ﷺ\u00a0orage")
    directory.conn.run("reset_password", {"user": user, "new_password": svc_pw, "must_change": False}, timeout=30)
    secret = tmp_path / "svc"
    secret.write_text(svc_pw, encoding="utf-8")
    config = target_config(directory.target, bind_dn=directory.dn(user), password={"file": str(secret)})
    other, _ = directory.create_user()
    conn = LdapConnector(directory.target, config, SecretStore(LAB))
    try:
        status = conn.run("account_status", {"user": other}, timeout=30)
        assert status["exists"] is True and status["dn"].lower() == directory.dn(other).lower()
    finally:
        conn.close()


# --- end to end through the runner: nothing between the requester and the directory
# --- (parameters, templates, engine) may normalise or re-encode a password


def test_runbooks_carry_the_typed_bytes_end_to_end(app: Firstline, directory: Directory) -> None:
    user, _ = directory.create_user()
    typed = unique("Sommet lointain ²² orage")
    out = app.run("password-reset", {"new_password": typed, "must_change": False}, requester=user, roles={"employee"})
    assert out.state == "resolved", (out.reason, out.message)
    assert_stored_exactly(directory, user, typed)
    new = unicodedata.normalize("NFD", unique("Kv-9 café ½ ﬁne ﷺ\u00a0orage"))
    out = app.run("password-change", {"old_password": typed, "new_password": new}, requester=user, roles={"employee"})
    assert out.state == "resolved", (out.reason, out.message)
    assert_stored_exactly(directory, user, new)
    assert not bind_bytes(directory, user, unicodedata.normalize("NFC", new))


def test_three_arabic_ligatures_are_too_short_through_the_runbook(app: Firstline, directory: Directory) -> None:
    """The issue's item 4 input: 3 characters typed, 54 after NFKC; refused, nothing changed."""
    user, pw = directory.create_user()
    before = directory.state_attrs(user)
    out = app.run("password-reset", {"new_password": "ﷺﷺﷺ"}, requester=user, roles={"employee"})
    assert out.state != "resolved" and out.reason == "too_short"
    assert directory.state_attrs(user) == before and directory.bind_ok(user, pw)
