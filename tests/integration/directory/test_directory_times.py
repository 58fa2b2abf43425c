"""Lock values, validity times and expired passwords, read exactly — against the real slapd and Samba AD DC.

Issue 7 items 1, 2 and 5: OpenLDAP's administrator lock in every spelling is never lifted;
GeneralizedTime in every precision decides "expired" as slapd does; a value Firstline cannot
read ends the run escalated; an expired password is changed where the directory allows it
(OpenLDAP grace binds, AD) and otherwise the requester is sent to password reset.
Each test also checks that the directory itself agrees (a bind as the user).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from ldap3 import MODIFY_REPLACE, Connection

from connectors.base import Rejected
from runner.api import open_app
from runner.service import Firstline
from runner.settings import Settings
from tests.integration.directory.helpers import LAB, VAR, Directory, mails_to, new_password

pytestmark = pytest.mark.integration

POLICIES = "ou=policies,dc=example,dc=org"
SHORT_LOCKOUT = f"cn=short-lockout,{POLICIES}"  # pwdLockoutDuration 3600
EXPIRE_FAST = f"cn=expire-fast,{POLICIES}"  # pwdMaxAge 3, no grace binds (lab/slapd.sh)
EXPIRE_FAST_GRACE = f"cn=expire-fast-grace,{POLICIES}"  # pwdMaxAge 3, two grace binds
NO_LOCKOUT = f"cn=no-lockout,{POLICIES}"  # pwdLockout FALSE, pwdMaxAge one year


def _absolute(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"file"} and not str(node["file"]).startswith("/"):
            return {"file": str((LAB / node["file"]).resolve())}
        return {k: _absolute(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


def _app(target: str, settings: Settings, tmp_path: Path) -> Firstline:
    if target != "corp":
        raw = _absolute(yaml.safe_load((LAB / "inventory.yaml").read_text()))
        raw["defaults"]["ldap"] = target
        inv = tmp_path / "inventory.yaml"
        inv.write_text(yaml.safe_dump(raw))
        settings = settings.model_copy(update={"inventory": inv})
    return open_app(settings)


@pytest.fixture
def corp_app(openldap: Directory, lab_settings: Settings, tmp_path: Path) -> Iterator[Firstline]:
    app = _app("corp", lab_settings, tmp_path)
    yield app
    app.close()


@pytest.fixture
def ad_app(ad: Directory, lab_settings: Settings, tmp_path: Path) -> Iterator[Firstline]:
    app = _app("ad", lab_settings, tmp_path)
    yield app
    app.close()


def status(d: Directory, user: str) -> dict[str, Any]:
    return d.conn.run("account_status", {"user": user}, timeout=10)


def refusal(d: Directory, action: str, **inputs: Any) -> Rejected:
    with pytest.raises(Rejected) as err:
        d.conn.run(action, inputs, timeout=30)
    return err.value


def raw_value(d: Directory, user: str, attr: str) -> list[Any]:
    return list(d.read(user, attr).get(attr) or [])


def wait_until_expired(d: Directory, user: str, limit: float = 15.0) -> None:
    """pwdMaxAge is 3 s in the fast policies (pwdChangedTime has whole seconds)."""
    deadline = time.monotonic() + limit
    while not status(d, user)["password_expired"]:
        assert time.monotonic() < deadline, "the password did not expire"
        time.sleep(0.5)


# ----------------------------------------------------------------------------- item 1: the administrator lock

ADMIN_LOCKS = [
    "00000101000000Z",  # the value (seconds precision)
    "000001010000Z",  # the documented spelling
    "0000010100Z",  # hour precision
    "00000101000000.5Z",  # a fraction (slapd ignores it for the lock)
    "00000101000000,0Z",
    "0000010100.5Z",
    "00000101010000+0100",  # 01:00 at +01:00 = 00:00 UTC
    "000001010000-0000",
    # the Unix epoch in any spelling: slapd's parse makes it time 0, the same lock for good
    "19700101000000Z",
    "197001010000Z",
    "19700101000000.5Z",
    "19700101010000+0100",
]


@pytest.mark.parametrize("spelling", ADMIN_LOCKS)
def test_every_spelling_of_the_admin_lock_is_reported_and_never_lifted(openldap: Directory, spelling: str) -> None:
    # short-lockout: a lock read as an ordinary failure lock at "year 0" would be long expired
    user, pw = openldap.create_user(pwdPolicySubentry=SHORT_LOCKOUT, pwdAccountLockedTime=spelling)
    assert not openldap.bind_ok(user, pw)  # slapd itself treats it as locked for good
    out = status(openldap, user)
    assert (out["locked"], out["lock_reason"], out["disabled"]) == (True, "admin", True)
    before = openldap.state_attrs(user)
    err = refusal(openldap, "unlock_account", user=user)
    assert err.reason == "disabled" and not err.requester_action
    assert openldap.state_attrs(user) == before
    assert raw_value(openldap, user, "pwdAccountLockedTime") == [spelling]


@pytest.mark.parametrize("spelling", ["00000101000000Z", "0000010100.5Z", "00000101010000+0100"])
def test_employee_unlock_of_an_admin_lock_escalates_without_an_unlocked_mail(
    corp_app: Firstline, openldap: Directory, spelling: str
) -> None:
    user, _pw = openldap.create_user(pwdAccountLockedTime=spelling)
    before = openldap.state_attrs(user)
    out = corp_app.run("account-unlock", {}, requester=user, roles={"employee"}, channel="portal")
    assert out.state == "escalated" and out.reason == "disabled", (out.state, out.reason, out.message)
    assert [s.status for s in out.steps if s.step_id == "unlock"] == ["failed"]
    assert openldap.state_attrs(user) == before  # re-read as the directory administrator
    assert raw_value(openldap, user, "pwdAccountLockedTime") == [spelling]
    assert mails_to(f"{user}@example.org", wait=0.5) == []
    note = corp_app.run("account-status", {"user": user}, requester="agent-1", roles={"agent"}).resolution_note
    assert note is not None and "locked by an administrator" in note and "disabled" in note


@pytest.mark.parametrize(
    "value",
    [
        "99991231235959Z",
        "25000101000000Z",
        "19691231235959Z",
        "00000101000001Z",
        "00000101000000-0100",
        "21060207000000Z",
    ],
)
def test_a_lock_time_is_locked_exactly_when_slapd_refuses_the_right_password(openldap: Directory, value: str) -> None:
    """slapd reads times after 2100-02-28 and before 1970 its own way
    (``connectors.ldap_time.openldap_seconds``): Firstline says "locked" exactly when the
    directory refuses the right password."""
    user, pw = openldap.create_user(pwdAccountLockedTime=value)
    assert status(openldap, user)["locked"] is (not openldap.bind_ok(user, pw))


def test_a_lock_for_ever_is_an_administrators_lock_and_is_left_alone(corp_app: Firstline, openldap: Directory) -> None:
    """``99991231235959Z`` (1970-02-20 to slapd, so enforced): not lifted by a first-level unlock."""
    user, pw = openldap.create_user(pwdAccountLockedTime="99991231235959Z")
    assert not openldap.bind_ok(user, pw)
    assert (status(openldap, user)["lock_reason"], status(openldap, user)["disabled"]) == ("admin", True)
    out = corp_app.run("account-unlock", {"user": user}, requester="agent-1", roles={"agent"})
    assert out.state == "escalated" and out.reason == "disabled", (out.state, out.reason, out.message)
    assert raw_value(openldap, user, "pwdAccountLockedTime") == ["99991231235959Z"]
    assert mails_to(f"{user}@example.org", wait=0.3) == []


@pytest.mark.parametrize("value", ["99991231235960Z"])
def test_a_lock_value_firstline_cannot_read_escalates_and_is_left_alone(
    corp_app: Firstline, openldap: Directory, value: str
) -> None:
    """slapd accepts it (a leap second past 9999: year 10000 once read); Firstline does not guess.
    (A year-0 time before 0000-01-01 in UTC, ``00000101000000+0100``, slapd refuses to store.)"""
    user, _pw = openldap.create_user(pwdAccountLockedTime=value)
    err = refusal(openldap, "account_status", user=user)
    assert err.reason == "unreadable_value" and "pwdAccountLockedTime" in str(err)
    out = corp_app.run("account-unlock", {"user": user}, requester="agent-1", roles={"agent"})
    assert out.state == "escalated" and out.reason == "unreadable_value"
    assert raw_value(openldap, user, "pwdAccountLockedTime") == [value]
    assert mails_to(f"{user}@example.org", wait=0.3) == []


def test_a_policy_without_lockout_ignores_failure_locks_as_slapd_does(openldap: Directory) -> None:
    user, pw = openldap.create_user(pwdPolicySubentry=NO_LOCKOUT, pwdAccountLockedTime="2026010100Z")
    assert openldap.bind_ok(user, pw)  # slapd: pwdLockout FALSE, the value has no effect
    assert status(openldap, user)["locked"] is False
    admin_locked, _ = openldap.create_user(pwdPolicySubentry=NO_LOCKOUT, pwdAccountLockedTime="000001010000Z")
    assert status(openldap, admin_locked)["lock_reason"] == "admin"  # an administrator's decision: never acted on


def test_unlock_lifts_an_ordinary_lock_in_minute_precision(openldap: Directory) -> None:
    recent = datetime.now(UTC).strftime("%Y%m%d%H%MZ")
    user, pw = openldap.create_user(pwdPolicySubentry=SHORT_LOCKOUT, pwdAccountLockedTime=recent)
    assert not openldap.bind_ok(user, pw)
    assert (status(openldap, user)["lock_reason"]) == "failures"
    out = openldap.conn.run("unlock_account", {"user": user}, timeout=15)
    assert out == {"unlocked": True, "was_locked": True, "changed": True}
    assert raw_value(openldap, user, "pwdAccountLockedTime") == []
    assert openldap.bind_ok(user, pw)


def test_unlock_deletes_only_the_lock_it_judged(openldap: Directory) -> None:
    """An administrator lock set between the read and the write survives the unlock's delete."""
    stale = datetime.now(UTC).strftime("%Y%m%d%H%M%SZ")
    user, _pw = openldap.create_user(pwdAccountLockedTime="00000101000000Z")
    svc = openldap.conn._service(10)
    failure = openldap.conn._flavor.unlock(svc, openldap.dn(user), {"pwdAccountLockedTime": [stale.encode()]})
    assert failure is None  # noSuchAttribute value: left to the re-read
    assert raw_value(openldap, user, "pwdAccountLockedTime") == ["00000101000000Z"]


def test_times_are_read_raw_even_if_ldap3_would_format_them(openldap: Directory, monkeypatch: Any) -> None:
    """With schema-based formatting ldap3 turns times into datetime objects; the connector keeps the bytes."""
    from ldap3 import SCHEMA, Server

    conn = openldap.conn
    original = conn._server

    def schema_server(*args: Any, **kwargs: Any) -> Server:
        server = original(*args, **kwargs)
        return Server(server.host, port=server.port, use_ssl=server.ssl, tls=server.tls, get_info=SCHEMA)

    monkeypatch.setattr(conn, "_server", schema_server)
    conn.close()
    ended, _ = openldap.create_user(pwdEndTime="2020010100Z")
    frozen, _ = openldap.create_user(pwdAccountLockedTime="00000101000000Z")
    assert status(openldap, ended)["expired"] is True
    assert status(openldap, frozen)["lock_reason"] == "admin"


# ----------------------------------------------------------------------------- item 2: validity times

ENDED = ["2020010100Z", "202001010000Z", "2020010100.5Z", "2020010100+0100", "20200101000000,5Z", "2020010100-0530"]


@pytest.mark.parametrize("end", ENDED)
def test_an_end_time_in_any_precision_makes_the_account_expired(openldap: Directory, end: str) -> None:
    user, pw = openldap.create_user(pwdEndTime=end)
    assert not openldap.bind_ok(user, pw)  # slapd agrees: validity ended
    assert status(openldap, user)["expired"] is True
    before = openldap.state_attrs(user)
    err = refusal(openldap, "reset_password", user=user, new_password=new_password())
    assert err.reason == "expired"
    assert openldap.state_attrs(user) == before


def test_agent_reset_of_an_hour_precision_ended_account_escalates(corp_app: Firstline, openldap: Directory) -> None:
    user, _pw = openldap.create_user(pwdEndTime="2020010100Z")
    before = openldap.state_attrs(user)
    out = corp_app.run("password-reset", {"user": user}, requester="agent-1", roles={"agent"})
    assert out.state == "escalated" and out.reason == "expired"
    assert out.secrets == {}  # no temporary password that could never be used
    assert openldap.state_attrs(user) == before
    assert mails_to(f"{user}@example.org", wait=0.3) == []


def test_an_end_time_to_come_leaves_the_account_usable(openldap: Directory) -> None:
    user, pw = openldap.create_user(pwdEndTime="2999010100Z")
    assert openldap.bind_ok(user, pw)
    assert status(openldap, user)["expired"] is False
    new = new_password()
    openldap.conn.run("reset_password", {"user": user, "new_password": new, "must_change": False}, timeout=30)
    assert openldap.bind_ok(user, new)


@pytest.mark.parametrize("start", ["2999010100Z", "299901010000.5Z", "29990101000000+0100"])
def test_a_start_time_to_come_means_not_active_yet(openldap: Directory, start: str) -> None:
    user, pw = openldap.create_user(pwdStartTime=start)
    assert not openldap.bind_ok(user, pw)  # slapd agrees: not valid yet
    out = status(openldap, user)
    assert (out["disabled"], out["locked"]) == (True, False)
    assert refusal(openldap, "reset_password", user=user, new_password=new_password()).reason == "disabled"


def test_an_unreadable_end_time_fails_closed(openldap: Directory) -> None:
    user, _pw = openldap.create_user(pwdEndTime="00000101000000Z")  # slapd accepts year 0
    err = refusal(openldap, "reset_password", user=user, new_password=new_password())
    assert err.reason == "unreadable_value" and "pwdEndTime" in str(err)


# ----------------------------------------------------------------------------- item 5: expired passwords, OpenLDAP


def test_account_status_shows_when_the_password_expires(corp_app: Firstline, openldap: Directory) -> None:
    user, _pw = openldap.create_user(pwdPolicySubentry=NO_LOCKOUT)  # pwdMaxAge: one year
    out = status(openldap, user)
    expires = datetime.strptime(out["password_expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert out["password_expired"] is False and 364 <= (expires - datetime.now(UTC)).days <= 365
    note = corp_app.run("account-status", {"user": user}, requester="agent-1", roles={"agent"}).resolution_note
    assert note is not None and f"the password expires on {out['password_expires']}" in note
    plain, _ = openldap.create_user()  # the default policy has no pwdMaxAge
    assert status(openldap, plain)["password_expires"] == ""


def test_an_expired_password_without_grace_sends_the_requester_to_reset(
    corp_app: Firstline, openldap: Directory
) -> None:
    user, pw = openldap.create_user(pwdPolicySubentry=EXPIRE_FAST)
    wait_until_expired(openldap, user)
    assert not openldap.bind_ok(user, pw)  # slapd: passwordExpired, no grace bind
    out = status(openldap, user)
    assert out["password_expired"] is True and out["must_change"] is True and out["password_expires"]
    note = corp_app.run("account-status", {"user": user}, requester="agent-1", roles={"agent"}).resolution_note
    assert note is not None and "the password has expired" in note
    before = openldap.state_attrs(user)
    run = corp_app.run(
        "password-change",
        {"old_password": pw, "new_password": new_password()},
        requester=user,
        roles={"employee"},
        channel="portal",
    )
    assert run.state == "closed" and run.reason == "password_expired", (run.state, run.reason, run.message)
    assert "forgot password" in run.message and "not correct" not in run.message
    assert openldap.state_attrs(user) == before
    assert mails_to(f"{user}@example.org", wait=0.3) == []


def test_an_unlock_of_an_account_whose_password_expired_says_a_new_one_is_needed(
    corp_app: Firstline, openldap: Directory
) -> None:
    """The unlock is true (the lock is gone) but the person still cannot sign in: the note and
    the mail said "unlocked now" only (found by a tester). Both now say a new password is needed."""
    user, pw = openldap.create_user(pwdPolicySubentry=EXPIRE_FAST)
    wait_until_expired(openldap, user)
    openldap.set(user, pwdAccountLockedTime=datetime.now(UTC).strftime("%Y%m%d%H%M%SZ"))
    out = corp_app.run("account-unlock", {"user": user}, requester="agent-1", roles={"agent"})
    assert out.state == "resolved", (out.state, out.reason, out.message)
    assert raw_value(openldap, user, "pwdAccountLockedTime") == []  # the unlock itself happened
    assert not openldap.bind_ok(user, pw)  # and still no sign-in: the password has expired
    assert out.resolution_note is not None and "is unlocked now" in out.resolution_note
    assert "Its password has expired, though: a new one must be set" in out.resolution_note
    nl = json.loads(corp_app.ticket(out.ticket_number)["resolution_note_i18n"])["nl"]
    assert "Het wachtwoord is wel verlopen" in nl
    (mail,) = mails_to(f"{user}@example.org", wait=5)
    body = mail.get_body(("plain",)).get_content()
    assert "Your password has expired, though: set a new one" in body and "Uw wachtwoord is wel verlopen" in body


def test_an_unlock_of_an_account_whose_password_has_not_expired_says_nothing_of_it(
    corp_app: Firstline, openldap: Directory
) -> None:
    user, pw = openldap.create_user()
    openldap.set(user, pwdAccountLockedTime=datetime.now(UTC).strftime("%Y%m%d%H%M%SZ"))
    out = corp_app.run("account-unlock", {"user": user}, requester="agent-1", roles={"agent"})
    assert out.state == "resolved" and openldap.bind_ok(user, pw)
    assert out.resolution_note is not None and "expired" not in out.resolution_note
    (mail,) = mails_to(f"{user}@example.org", wait=5)
    assert "expired" not in mail.get_body(("plain",)).get_content()


def test_an_expired_password_is_refused_before_any_bind_is_counted(openldap: Directory) -> None:
    """With a wrong current password slapd would count a failed sign-in; Firstline does not bind at all."""
    user, _pw = openldap.create_user(pwdPolicySubentry=EXPIRE_FAST)
    wait_until_expired(openldap, user)
    err = refusal(
        openldap, "change_password", user=user, old_password="Not-the-password-1", new_password=new_password()
    )
    assert err.reason == "password_expired" and err.requester_action
    assert raw_value(openldap, user, "pwdFailureTime") == []


def test_the_directorys_password_expired_answer_is_recognised(openldap: Directory) -> None:
    """The bind's ppolicy control (error 0, passwordExpired), without Firstline's own expiry check."""
    user, pw = openldap.create_user(pwdPolicySubentry=EXPIRE_FAST)
    wait_until_expired(openldap, user)
    with pytest.raises(Rejected) as err:
        openldap.conn._change_as_user(openldap.dn(user), pw, new_password(), 10)
    assert err.value.reason == "password_expired" and err.value.requester_action


def test_an_expired_password_with_grace_binds_left_is_changed(corp_app: Firstline, openldap: Directory) -> None:
    user, pw = openldap.create_user(pwdPolicySubentry=EXPIRE_FAST_GRACE)
    wait_until_expired(openldap, user)
    new = new_password()
    run = corp_app.run("password-change", {"old_password": pw, "new_password": new}, requester=user, roles={"employee"})
    assert run.state == "resolved", (run.reason, run.message)
    assert openldap.bind_ok(user, new)
    assert status(openldap, user)["password_expired"] is False  # pwdChangedTime renewed (for 3 s)
    (msg,) = mails_to(f"{user}@example.org")
    assert "changed" in msg.get_content()


# ----------------------------------------------------------------------------- Active Directory


def test_ad_disabled_account_is_never_unlocked(ad_app: Firstline, ad: Directory) -> None:
    # disabled by an administrator, then locked (Samba clears lockoutTime when userAccountControl changes)
    user, _pw = ad.create_user(userAccountControl="514")
    ad.lock(user)
    out = status(ad, user)
    assert (out["locked"], out["disabled"]) == (True, True)
    before = ad.state_attrs(user)
    run = ad_app.run("account-unlock", {"user": user}, requester="agent-1", roles={"agent"})
    assert run.state == "escalated" and run.reason == "disabled"
    assert ad.state_attrs(user) == before  # lockoutTime untouched
    assert mails_to(f"{user}@example.org", wait=0.3) == []


FILETIME_2020 = "132223104000000000"


@pytest.mark.parametrize(("value", "expired"), [(FILETIME_2020, True), ("0", False), ("9223372036854775807", False)])
def test_ad_account_expires_and_its_never_sentinels(ad: Directory, value: str, expired: bool) -> None:
    user, pw = ad.create_user()
    ad.set(user, accountExpires=value)
    assert ad.bind_ok(user, pw) is not expired  # the DC agrees
    assert status(ad, user)["expired"] is expired
    if expired:
        assert refusal(ad, "reset_password", user=user, new_password=new_password()).reason == "expired"


def test_ad_must_change_at_next_logon_is_changed(ad_app: Firstline, ad: Directory) -> None:
    user, pw = ad.create_user()
    ad.set(user, pwdLastSet="0")
    c = Connection(ad.server, f"{user}@example.test", pw)
    assert c.bind() is False and "data 773" in c.result["message"]
    out = status(ad, user)
    assert (out["must_change"], out["password_expired"]) == (True, False)
    new = new_password()
    run = ad_app.run("password-change", {"old_password": pw, "new_password": new}, requester=user, roles={"employee"})
    assert run.state == "resolved", (run.reason, run.message)
    assert ad.bind_ok(user, new)
    assert status(ad, user)["must_change"] is False


def _age_ad_password(ad: Directory, user: str) -> None:
    """pwdLastSet = 2020-01-01 through the DC's own database (LDAP allows only 0 / -1).

    DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET_OID (1.3.6.1.4.1.7165.4.3.20) lets a local ldb
    client write the value; Samba's minimum expiring pwdMaxAge is a day, so waiting is no option.
    """
    sam = VAR / "samba" / "dc" / "private" / "sam.ldb"
    if shutil.which("ldbmodify") is None or not sam.exists():
        pytest.skip("ldbmodify or the lab's sam.ldb is not available: AD 532 (password expired) cannot be shown")
    ldif = f"dn: {ad.dn(user)}\nchangetype: modify\nreplace: pwdLastSet\npwdLastSet: {FILETIME_2020}\n"
    proc = subprocess.run(
        ["ldbmodify", "-H", str(sam), "--controls=local_oid:1.3.6.1.4.1.7165.4.3.20:0"],
        input=ldif,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_ad_expired_password_is_shown_and_changed(ad_app: Firstline, ad: Directory) -> None:
    user, pw = ad.create_user()
    _age_ad_password(ad, user)
    c = Connection(ad.server, f"{user}@example.test", pw)
    assert c.bind() is False and "data 532" in c.result["message"]  # the DC: password expired
    out = status(ad, user)
    assert (out["password_expired"], out["must_change"]) == (True, True)
    assert out["password_expires"].startswith("2020-02-12")  # pwdLastSet + the domain's 42 days
    note = ad_app.run("account-status", {"user": user}, requester="agent-1", roles={"agent"}).resolution_note
    assert note is not None and "the password has expired (on 2020-02-12" in note
    new = new_password()
    run = ad_app.run("password-change", {"old_password": pw, "new_password": new}, requester=user, roles={"employee"})
    assert run.state == "resolved", (run.reason, run.message)
    assert ad.bind_ok(user, new)
    after = status(ad, user)
    assert after["password_expired"] is False and after["password_expires"] > "2026"


def test_ad_values_that_do_not_parse_fail_closed(ad: Directory) -> None:
    user, _pw = ad.create_user()
    ok = ad.admin.modify(ad.dn(user), {"accountExpires": [(MODIFY_REPLACE, ["-5"])]})
    if not ok:
        pytest.skip(f"the DC refuses a negative accountExpires: {ad.admin.result['description']}")
    err = refusal(ad, "account_status", user=user)
    assert err.reason == "unreadable_value" and "accountExpires" in str(err)
