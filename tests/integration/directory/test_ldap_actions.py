"""Every ldap action on both flavours, against the real lab slapd and Samba AD DC."""

from __future__ import annotations

import pytest

from connectors.base import InvalidInput, NotFound, Rejected
from tests.integration.directory.helpers import Directory, lab_users, new_password

pytestmark = pytest.mark.integration


def test_account_status_reads_a_normal_account(directory: Directory) -> None:
    user, _ = directory.create_user(given="Wilma", sn="Jansen")
    out = directory.conn.run("account_status", {"user": user}, timeout=10)
    assert out["exists"] is True
    assert out["dn"].lower() == directory.dn(user).lower()
    assert (out["locked"], out["disabled"], out["expired"], out["privileged"]) == (False, False, False, False)
    assert out["lock_reason"] == ""
    assert (out["given_name"], out["surname"], out["mail"]) == ("Wilma", "Jansen", f"{user}@example.org")


def test_account_status_of_a_missing_account_says_it_does_not_exist(directory: Directory) -> None:
    out = directory.conn.run("account_status", {"user": "no-such-user-x1"}, timeout=10)
    assert out["exists"] is False and out["dn"] == "" and out["locked"] is False


def test_lab_accounts_are_classified(directory: Directory) -> None:
    status = {
        u: directory.conn.run("account_status", {"user": u}, timeout=10) for u in ("root-admin", "frozen", "gone")
    }
    assert status["root-admin"]["privileged"] is True
    assert status["frozen"]["disabled"] is True
    assert status["gone"]["expired"] is True
    assert status["gone"]["disabled"] is False


def test_lockout_is_seen_and_unlock_lifts_it(directory: Directory) -> None:
    user, pw = directory.create_user()
    directory.lock(user)
    out = directory.conn.run("account_status", {"user": user}, timeout=10)
    assert (out["locked"], out["lock_reason"]) == (True, "failures")
    assert not directory.bind_ok(user, pw)
    assert directory.conn.run("unlock_account", {"user": user}, timeout=10) == {
        "unlocked": True,
        "was_locked": True,
        "changed": True,
    }
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False
    assert directory.bind_ok(user, pw)


def test_unlock_of_an_unlocked_account_changes_nothing(directory: Directory) -> None:
    user, _ = directory.create_user()
    before = directory.state_attrs(user)
    assert directory.conn.run("unlock_account", {"user": user}, timeout=10) == {
        "unlocked": False,
        "was_locked": False,
        "changed": False,
    }
    assert directory.state_attrs(user) == before


def test_reset_generates_a_temporary_password_that_must_be_changed(directory: Directory) -> None:
    user, old = directory.create_user()
    out = directory.conn.run("reset_password", {"user": user}, timeout=30)
    temp = out["temporary_password"]
    assert out["must_change"] is True and len(temp) >= 19
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is True
    assert not directory.bind_ok(user, old)
    if directory.flavor == "openldap":
        assert directory.bind_ok(user, temp)  # bind allowed, session limited to the password change


def test_reset_with_a_chosen_password_and_no_must_change(directory: Directory) -> None:
    user, _ = directory.create_user()
    pw = new_password()
    out = directory.conn.run("reset_password", {"user": user, "new_password": pw, "must_change": False}, timeout=30)
    assert out == {"must_change": False}
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is False
    assert directory.bind_ok(user, pw)


def test_reset_of_a_locked_account_keeps_state_readable(directory: Directory) -> None:
    user, _ = directory.create_user()
    directory.lock(user)
    pw = new_password()
    directory.conn.run("reset_password", {"user": user, "new_password": pw, "must_change": False}, timeout=30)
    directory.conn.run("unlock_account", {"user": user}, timeout=10)
    assert directory.bind_ok(user, pw)


def test_change_password_with_the_right_old_password(directory: Directory) -> None:
    user, old = directory.create_user()
    new = new_password()
    out = directory.conn.run("change_password", {"user": user, "old_password": old, "new_password": new}, timeout=30)
    assert out == {"changed": True}
    assert directory.bind_ok(user, new)
    if directory.flavor == "openldap":
        # (AD keeps accepting the previous password for a while after a change:
        # "old password allowed period", 60 minutes by default, on Windows and Samba.)
        assert not directory.bind_ok(user, old)


def test_change_password_after_a_reset_clears_must_change(directory: Directory) -> None:
    user, _ = directory.create_user()
    temp = directory.conn.run("reset_password", {"user": user}, timeout=30)["temporary_password"]
    new = new_password()
    directory.conn.run("change_password", {"user": user, "old_password": temp, "new_password": new}, timeout=30)
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is False
    assert directory.bind_ok(user, new)


def test_change_password_with_a_wrong_old_password_is_refused(directory: Directory) -> None:
    user, old = directory.create_user()
    with pytest.raises(Rejected) as err:
        directory.conn.run(
            "change_password",
            {"user": user, "old_password": "Not-the-password-9", "new_password": new_password()},
            timeout=30,
        )
    assert err.value.reason == "wrong_password"
    assert directory.bind_ok(user, old)


def test_change_password_of_a_locked_account_says_locked(directory: Directory) -> None:
    user, old = directory.create_user()
    directory.lock(user)
    with pytest.raises(Rejected) as err:
        directory.conn.run(
            "change_password", {"user": user, "old_password": old, "new_password": new_password()}, timeout=30
        )
    assert err.value.reason == "locked"


def test_change_to_a_recent_password_is_refused_by_the_directory_history(directory: Directory) -> None:
    user, first = directory.create_user()
    second = new_password()
    directory.conn.run("change_password", {"user": user, "old_password": first, "new_password": second}, timeout=30)
    before = directory.state_attrs(user)
    with pytest.raises(Rejected) as err:
        directory.conn.run("change_password", {"user": user, "old_password": second, "new_password": first}, timeout=30)
    assert err.value.reason == "in_history"
    assert "history" not in str(err.value).lower() or "used recently" in str(err.value)
    after = directory.state_attrs(user)
    after.pop("badPwdCount", None), before.pop("badPwdCount", None)
    assert after == before
    assert directory.bind_ok(user, second)


def test_change_to_the_same_password_is_refused_before_the_directory(directory: Directory) -> None:
    user, old = directory.create_user()
    before = directory.state_attrs(user)
    with pytest.raises(Rejected) as err:
        directory.conn.run("change_password", {"user": user, "old_password": old, "new_password": old}, timeout=30)
    assert err.value.reason == "same_as_current"
    assert directory.state_attrs(user) == before


def test_check_password_applies_the_policy_without_writing(directory: Directory) -> None:
    user, _ = directory.create_user(given="Marieke", sn="Vermeulen")
    before = directory.state_attrs(user)
    assert directory.conn.run("check_password", {"user": user, "new_password": new_password()}, timeout=10) == {
        "ok": True
    }
    with pytest.raises(Rejected) as err:
        directory.conn.run("check_password", {"user": user, "new_password": "M4r1eke likes long walks"}, timeout=10)
    assert err.value.reason == "contains_personal_info"
    assert directory.state_attrs(user) == before


@pytest.mark.parametrize(
    ("password", "mfa", "reason"),
    [
        ("Short pass 1", False, "too_short"),
        ("Eight ch", False, "too_short"),
        ("x" * 129, False, "too_long"),
        ("passwordpassword", False, "common_password"),
        ("QwertyUiop123456", False, "common_password"),
    ],
)
def test_reset_policy_rules_refuse_before_the_directory(
    directory: Directory, password: str, mfa: bool, reason: str
) -> None:
    user, old = directory.create_user()
    before = directory.state_attrs(user)
    with pytest.raises(Rejected) as err:
        directory.conn.run("reset_password", {"user": user, "new_password": password, "mfa_verified": mfa}, timeout=30)
    assert err.value.reason == reason
    assert password not in str(err.value)
    assert directory.state_attrs(user) == before
    assert directory.bind_ok(user, old)


def test_eight_characters_are_enough_after_mfa_and_unicode_is_welcome(directory: Directory) -> None:
    user, _ = directory.create_user()
    directory.conn.run(
        "reset_password",
        {"user": user, "new_password": "Zk9!qüé€", "mfa_verified": True, "must_change": False},
        timeout=30,
    )
    long_pw = "Één lange zin met spaties, 12 woorden en €-teken! " + "x" * 20
    assert len(long_pw) >= 64
    directory.conn.run("reset_password", {"user": user, "new_password": long_pw, "must_change": False}, timeout=30)
    assert directory.bind_ok(user, long_pw)


def test_personal_information_is_refused_with_substitutions(directory: Directory) -> None:
    user, _ = directory.create_user(given="Geertruida", sn="Oosterhuis")
    for pw in ("G33rtru1da in the garden!", "the 00$terhu1$ family tree", f"{user.upper()} and more words"):
        with pytest.raises(Rejected) as err:
            directory.conn.run("reset_password", {"user": user, "new_password": pw}, timeout=30)
        assert err.value.reason == "contains_personal_info"


@pytest.mark.parametrize("action", ["unlock_account", "reset_password", "change_password"])
@pytest.mark.parametrize(
    ("account", "reason"), [("root-admin", "not_allowed"), ("frozen", "disabled"), ("gone", "expired")]
)
def test_privileged_disabled_and_expired_accounts_are_refused(
    directory: Directory, action: str, account: str, reason: str
) -> None:
    inputs: dict[str, object] = {"user": account}
    if action == "change_password":
        inputs |= {"old_password": lab_users(directory.flavor)[account], "new_password": new_password()}
    admin_view = directory.read(account, "userPassword" if directory.flavor == "openldap" else "pwdLastSet")
    with pytest.raises(Rejected) as err:
        directory.conn.run(action, inputs, timeout=30)
    assert err.value.reason == reason
    if reason == "not_allowed":
        assert "admin" not in str(err.value).lower()  # generic wording
    assert directory.read(account, *admin_view) == admin_view


def test_accounts_outside_the_base_dn_are_not_found(directory: Directory) -> None:
    assert directory.conn.run("account_status", {"user": "eve"}, timeout=10)["exists"] is False
    for action in ("unlock_account", "reset_password"):
        with pytest.raises(NotFound):
            directory.conn.run(action, {"user": "eve"}, timeout=10)


def test_missing_accounts_raise_not_found_for_changes(directory: Directory) -> None:
    for action, extra in (
        ("unlock_account", {}),
        ("reset_password", {}),
        ("change_password", {"old_password": "a", "new_password": new_password()}),
    ):
        with pytest.raises(NotFound):
            directory.conn.run(action, {"user": "nobody-here", **extra}, timeout=10)


@pytest.mark.parametrize(
    "name",
    ["*", ")(uid=*", "\\2a", "a\x00b", "admin*)(|(uid=*", "alice)", "al*", "(cn=*)", "x" * 65, "", " alice", "alice\n"],
)
def test_hostile_account_names_never_match(directory: Directory, name: str) -> None:
    for action in ("account_status", "unlock_account", "reset_password"):
        with pytest.raises(InvalidInput) as err:
            directory.conn.run(action, {"user": name}, timeout=10)
        assert err.value.reason in ("invalid_account", "invalid_input")
