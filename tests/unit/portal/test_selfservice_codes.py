"""Unit tests for runner.selfservice: codes, tries, expiry, snapshot, throttles (fake directory and mail).

The HTTP, slapd and SMTP side is in tests/integration/portal/test_selfservice.py.
"""

from __future__ import annotations

import hashlib
import hmac
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors.base import ActionSpec, Connector, ConnectorError, InputSpec, Rejected, TargetConfig, Unreachable
from runner.auth import DirectoryUnavailable
from runner.selfservice import CODE_DIGITS, CodeInvalid, PasswordRefused, SelfService
from runner.service import Firstline
from runner.settings import Settings


class AnyConfig(TargetConfig):
    label: str = "x"


class FakeLdap(Connector):
    name = "ldap"
    config_model = AnyConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "account_status": ActionSpec(
            "account_status",
            (InputSpec("user"),),
            outputs=frozenset({"exists", "mail", "privileged", "disabled", "expired", "password_set", "locked", "dn"}),
        ),
        "check_password": ActionSpec(
            "check_password", (InputSpec("user"), InputSpec("new_password", secret=True)), outputs=frozenset({"ok"})
        ),
    }
    users: ClassVar[dict[str, dict[str, Any]]] = {}
    calls: ClassVar[list[str]] = []
    gate: ClassVar[threading.Event | None] = None

    def account_status(self, *, timeout: float, user: str) -> dict[str, Any]:
        FakeLdap.calls.append(user)
        if FakeLdap.gate is not None:
            FakeLdap.gate.wait(10)
        found = FakeLdap.users.get(user)
        if found is None:
            return {
                "exists": False,
                "mail": "",
                "privileged": False,
                "disabled": False,
                "expired": False,
                "password_set": "",
                "locked": False,
            }
        return {
            "exists": True,
            "privileged": False,
            "disabled": False,
            "expired": False,
            "locked": False,
            "password_set": "20261130000000Z",
            **found,
        }

    refuse: ClassVar[ConnectorError | None] = None

    def check_password(self, *, timeout: float, user: str, new_password: str) -> dict[str, Any]:
        if FakeLdap.refuse is not None:
            raise FakeLdap.refuse
        if len(new_password) < 15:
            raise ConnectorError(
                "The new password is too short: use at least 15 characters.", reason="too_short", requester_action=True
            )
        return {"ok": True}


class FakeMail(Connector):
    name = "mail"
    config_model = AnyConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "send_code": ActionSpec(
            "send_code",
            (
                InputSpec("to"),
                InputSpec("account"),
                InputSpec("code", secret=True),
                InputSpec("purpose"),
                InputSpec("minutes", type="int"),
                InputSpec("link"),
            ),
            outputs=frozenset({"sent"}),
            changes_state=True,
        )
    }
    sent: ClassVar[list[dict[str, Any]]] = []

    def send_code(self, *, timeout: float, **inputs: Any) -> dict[str, Any]:
        FakeMail.sent.append(inputs)
        return {"sent": True}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[SelfService, Clock, Firstline]]:
    FakeLdap.users = {"alice": {"mail": "alice@example.org"}}
    FakeLdap.calls = []
    FakeLdap.gate = None
    FakeLdap.refuse = None
    FakeMail.sent = []
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "inventory.yaml").write_text(
        textwrap.dedent("""\
        defaults: {ldap: d1, mail: m1}
        targets:
          d1: {connector: ldap}
          m1: {connector: mail}
        """)
    )
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        runbooks_dir=tmp_path / "runbooks",
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "log.jsonl",
        public_base_url="https://portal.example.org/base",
    )
    app = Firstline(settings, connectors={"ldap": FakeLdap, "mail": FakeMail})
    clock = Clock()
    svc = SelfService(app, now=clock)
    yield svc, clock, app
    svc.close()
    app.close()


def ask(svc: SelfService, login: str = "alice", purpose: str = "reset", ip: str = "10.0.0.1") -> str | None:
    """Request a code and wait for the background job; the code mailed, or None."""
    before = len(FakeMail.sent)
    svc.request_code(login, purpose, client_ip=ip, user_agent="pytest")
    svc.drain()
    return str(FakeMail.sent[-1]["code"]) if len(FakeMail.sent) > before else None


def db_bytes(app: Firstline) -> bytes:
    path = Path(app.settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_code_is_digits_from_secrets_and_stored_only_as_hmac(setup: Any) -> None:
    svc, _clock, app = setup
    code = ask(svc)
    assert code is not None and len(code) == CODE_DIGITS and code.isdigit()
    assert FakeMail.sent[-1]["to"] == "alice@example.org"
    assert FakeMail.sent[-1]["link"] == "https://portal.example.org/base/reset/code"
    with app.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT code_hmac, account_key, snapshot_hmac FROM selfservice_code").all()
    assert len(rows) == 1
    key = hmac.new(app.settings.audit_secret(), b"firstline-selfservice-v1", hashlib.sha256).digest()
    assert rows[0][0] == hmac.new(key, f"code\0{code}".encode(), hashlib.sha256).hexdigest()
    assert rows[0][0] != hashlib.sha256(code.encode()).hexdigest(), "keyed, not a bare hash of 10^8 values"
    assert code.encode() not in db_bytes(app)
    assert b"alice" not in b"".join(str(v).encode() for v in rows[0])
    codes = {ask(svc, ip=f"10.0.1.{i}") for i in range(2)}
    assert len(codes | {code}) == 3


def test_code_is_single_use(setup: Any) -> None:
    svc, _clock, _app = setup
    code = ask(svc)
    proof = svc.redeem("alice", code, "reset", new_password="a long enough new password")
    assert (proof.username, proof.runbook, proof.account) == ("alice", "password-reset", "alice")
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")


@pytest.mark.parametrize(("minutes", "ok"), [(9.9, True), (10.01, False), (60, False)])
def test_code_expires_after_ten_minutes(setup: Any, minutes: float, ok: bool) -> None:
    svc, clock, _app = setup
    code = ask(svc)
    clock.advance(minutes=minutes)
    if ok:
        svc.redeem("alice", code, "reset", new_password="a long enough new password")
    else:
        with pytest.raises(CodeInvalid):
            svc.redeem("alice", code, "reset", new_password="a long enough new password")


def test_four_wrong_tries_leave_the_code_usable_five_burn_it(setup: Any) -> None:
    svc, _clock, _app = setup
    code = ask(svc)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(4):
        with pytest.raises(CodeInvalid):
            svc.redeem("alice", wrong, "reset", new_password="a long enough new password")
    svc.redeem("alice", code, "reset", new_password="a long enough new password")
    code = ask(svc, ip="10.0.0.2")
    for _ in range(5):
        with pytest.raises(CodeInvalid):
            svc.redeem("alice", wrong, "reset", new_password="a long enough new password")
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")


def test_password_change_since_issue_invalidates(setup: Any) -> None:
    svc, _clock, _app = setup
    code = ask(svc)
    FakeLdap.users["alice"]["password_set"] = "20261130080001Z"  # changed by another path
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")
    FakeLdap.users["alice"]["password_set"] = "20261130000000Z"  # even back to the old value: the code is gone
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")


def test_a_new_code_supersedes_the_old_one_and_purposes_are_separate(setup: Any) -> None:
    svc, _clock, _app = setup
    first = ask(svc)
    unlock = ask(svc, purpose="unlock")
    second = ask(svc)
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", first, "reset", new_password="a long enough new password")
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", unlock, "reset", new_password="a long enough new password")  # wrong purpose
    svc.redeem("alice", second, "reset", new_password="a long enough new password")
    with pytest.raises(CodeInvalid):  # a redeemed code closes every other live code of the account
        svc.redeem("alice", unlock, "unlock")


def test_refused_password_keeps_the_code(setup: Any) -> None:
    svc, _clock, _app = setup
    code = ask(svc)
    with pytest.raises(PasswordRefused):
        svc.redeem("alice", code, "reset", new_password="short")
    with pytest.raises(PasswordRefused):
        svc.redeem("alice", code, "reset", new_password=None)
    svc.redeem("alice", code, "reset", new_password="a long enough new password")


@pytest.mark.parametrize(
    ("user", "attrs"),
    [
        ("nobody", None),
        ("alice", {"privileged": True}),
        ("alice", {"disabled": True}),
        ("alice", {"expired": True}),
        ("alice", {"mail": ""}),
    ],
)
def test_no_code_for_accounts_that_cannot_use_it(setup: Any, user: str, attrs: dict[str, Any] | None) -> None:
    svc, _clock, _app = setup
    if attrs:
        FakeLdap.users["alice"].update(attrs)
    assert ask(svc, user) is None
    assert FakeLdap.calls == [user], "looked up once, in the background"


def test_locked_account_gets_a_code(setup: Any) -> None:
    svc, _clock, _app = setup
    FakeLdap.users["alice"]["locked"] = True
    assert ask(svc, purpose="unlock") is not None


def test_lookup_and_mail_happen_in_the_background(setup: Any) -> None:
    svc, _clock, _app = setup
    FakeLdap.gate = threading.Event()
    started = time.monotonic()
    assert svc.request_code("alice", "reset", client_ip="10.0.0.1", user_agent=None) is None
    assert time.monotonic() - started < 1.0
    assert FakeMail.sent == []
    FakeLdap.gate.set()
    svc.drain()
    assert len(FakeMail.sent) == 1


def test_account_throttle_is_checked_before_any_lookup(setup: Any) -> None:
    svc, clock, _app = setup
    spellings = ["alice", "ALICE", " alice ", "Alice"]
    for i, login in enumerate(spellings[:3]):
        assert ask(svc, login, ip=f"10.0.2.{i}") is not None
    assert ask(svc, spellings[3], ip="10.0.2.9") is None
    assert FakeLdap.calls == ["alice"] * 3, "the 4th request never reached the directory"
    clock.advance(minutes=61)
    assert ask(svc, ip="10.0.3.1") is not None and ask(svc, ip="10.0.3.2") is not None  # 5 in 24 h
    clock.advance(minutes=61)
    assert ask(svc, ip="10.0.3.3") is None, "at most 5 per 24 hours"
    assert len(FakeLdap.calls) == 5
    clock.advance(hours=24)
    assert ask(svc, ip="10.0.3.4") is not None
    assert ask(svc, purpose="unlock", ip="10.0.3.5") is not None


def test_reset_and_unlock_codes_share_one_budget_per_account(setup: Any) -> None:
    """security.md item 4: at most 3 code mails an hour and 5 a day reach one account, whatever
    they are for (per purpose, 3 reset + 3 unlock codes an hour reached one person)."""
    svc, clock, _app = setup
    FakeLdap.users["alice"]["locked"] = True
    assert ask(svc, purpose="reset", ip="10.0.5.1") is not None
    assert ask(svc, purpose="unlock", ip="10.0.5.2") is not None
    assert ask(svc, purpose="reset", ip="10.0.5.3") is not None
    assert ask(svc, purpose="unlock", ip="10.0.5.4") is None, "a 4th code mail within the hour"
    assert ask(svc, purpose="reset", ip="10.0.5.5") is None
    clock.advance(minutes=61)
    assert ask(svc, purpose="unlock", ip="10.0.5.6") is not None
    assert ask(svc, purpose="reset", ip="10.0.5.7") is not None
    clock.advance(minutes=61)
    assert ask(svc, purpose="unlock", ip="10.0.5.8") is None, "a 6th code mail within 24 hours"
    assert len(FakeMail.sent) == 5 and FakeLdap.calls == ["alice"] * 5, "throttled before any look-up"


def test_another_name_of_the_same_account_shares_its_budget(setup: Any) -> None:
    """A second uid value of one entry had a budget of its own: 3 codes for ``alice`` and a
    4th for her other name reached the same mailbox within the hour (a tester's find). The
    account's entry is counted too, after the look-up (the typed name's budget holds before)."""
    svc, _clock, _app = setup
    entry = {"mail": "alice@example.org", "dn": "uid=alice,ou=people,dc=example,dc=org"}
    FakeLdap.users["alice"] = dict(entry)
    FakeLdap.users["alice-alias"] = dict(entry)
    for i in range(3):
        assert ask(svc, "alice", ip=f"10.0.6.{i}") is not None
    assert ask(svc, "alice-alias", ip="10.0.6.9") is None, "a 4th code mail to the same account"
    assert len(FakeMail.sent) == 3


def test_unknown_accounts_are_throttled_the_same_way(setup: Any) -> None:
    svc, _clock, _app = setup
    for i in range(5):
        ask(svc, "nobody", ip=f"10.0.4.{i}")
    assert FakeLdap.calls == ["nobody"] * 3


def test_address_and_global_limits(setup: Any) -> None:
    svc, _clock, app = setup
    object.__setattr__(app.settings, "reset_per_address_hour", 2)
    object.__setattr__(app.settings, "reset_global_day", 3)
    FakeLdap.users.update({u: {"mail": f"{u}@example.org"} for u in ("b1", "b2", "b3", "b4")})
    assert ask(svc, "b1", ip="10.9.9.9") and ask(svc, "b2", ip="10.9.9.9")
    assert ask(svc, "b3", ip="10.9.9.9") is None
    assert ask(svc, "b3", ip="10.9.9.8") is not None
    assert ask(svc, "b4", ip="10.9.9.7") is None
    assert FakeLdap.calls == ["b1", "b2", "b3"]


def test_unknown_login_and_malformed_input_are_just_invalid(setup: Any) -> None:
    svc, _clock, _app = setup
    for login in ("nobody", "", "*)(uid=*", "a" * 400, "x@unknown.example"):
        with pytest.raises(CodeInvalid):
            svc.redeem(login, "12345678", "reset", new_password="a long enough new password")
        assert svc.request_code(login, "reset", client_ip=None, user_agent=None) is None


def test_directory_down_at_redemption_keeps_the_code(setup: Any) -> None:
    svc, _clock, _app = setup
    code = ask(svc)
    FakeLdap.refuse = Unreachable("The directory cannot be reached.")
    with pytest.raises(DirectoryUnavailable):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")
    FakeLdap.refuse = None
    svc.redeem("alice", code, "reset", new_password="a long enough new password")


def test_other_refusals_after_the_proof_go_to_the_runbook(setup: Any) -> None:
    svc, _clock, _app = setup
    code = ask(svc)
    FakeLdap.refuse = Rejected("This account is protected.", reason="not_allowed")  # became protected meanwhile
    proof = svc.redeem("alice", code, "reset", new_password="a long enough new password")
    assert proof.runbook == "password-reset"  # the run refuses and escalates with its own reason
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")


@pytest.mark.parametrize(
    "bad", ["tab\there long password", "nul\x00 long password", "line\nbreak long password", "\x7f del long password"]
)
def test_a_new_password_with_a_control_character_is_refused_before_the_code_is_used(setup: Any, bad: str) -> None:
    """runner.params refuses such a secret when the run starts; redeem refuses it first, so
    the code is neither tried nor used up (any caller, not only the portal's check)."""
    svc, _clock, _app = setup
    code = ask(svc)
    with pytest.raises(PasswordRefused) as err:
        svc.redeem("alice", code, "reset", new_password=bad)
    assert err.value.reason == "invalid_characters" and bad not in str(err.value)
    proof = svc.redeem("alice", code, "reset", new_password="a long enough new password")  # still live
    assert proof.username == "alice"


def test_an_unlock_code_with_a_new_password_is_refused_before_the_code_is_used(setup: Any) -> None:
    """An unlock sets no password: one given is refused (not dropped, as if it were set), and
    the code is neither tried nor used up; an empty one is no value."""
    svc, _clock, _app = setup
    code = ask(svc, purpose="unlock")
    with pytest.raises(PasswordRefused) as err:
        svc.redeem("alice", code, "unlock", new_password="a long enough new password")
    assert err.value.reason == "not_for_unlock" and "a long enough" not in str(err.value)
    proof = svc.redeem("alice", code, "unlock", new_password="")  # still live
    assert proof.runbook == "account-unlock"


def test_the_unlock_password_refusal_has_its_dutch() -> None:
    from runner.selfservice import UNLOCK_SETS_NOTHING_MESSAGE
    from tests.unit.portal.dutch_catalogue import untranslated

    assert untranslated([UNLOCK_SETS_NOTHING_MESSAGE]) == ([], [])


def _busy(_proof: Any) -> None:
    from runner.dispatch import QueueFull

    raise QueueFull("Firstline is busy; nothing was started.")


def test_a_run_refused_before_its_ticket_gives_the_code_back(setup: Any) -> None:
    """redeem_and_start: the run was refused (busy) after the code was redeemed: the code is
    live again with the tries it had, so "try again" works; the next start is handed the proof."""
    from runner.dispatch import QueueFull

    svc, _clock, app = setup
    code = ask(svc)
    with pytest.raises(QueueFull):
        svc.redeem_and_start("alice", code, "reset", _busy, new_password="a long enough new password")
    proof = svc.redeem_and_start("alice", code, "reset", lambda p: p, new_password="a long enough new password")
    assert proof.runbook == "password-reset" and proof.code_id
    with pytest.raises(CodeInvalid):  # used by the run that started
        svc.redeem("alice", code, "reset", new_password="a long enough new password")
    with app.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT reason FROM audit_event WHERE action = 'selfservice.code_restored'"
        ).fetchall()
    assert [tuple(r) for r in rows] == [("queue_full",)]


def _run(state: str, *steps: tuple[str, str, str | None]) -> Any:
    """A run's outcome with steps ``(action, status, reason)`` on the directory."""
    from runner.engine import StepRecord
    from runner.runs import RunOutcome

    records = [
        StepRecord(action, "ldap", action, "d1", status, {}, {}, reason, f"{action}: {status}", 1, "t0", "t1")
        for action, status, reason in steps
    ]
    return RunOutcome("FL-000001", state, None, "", None, records)


def test_a_password_the_directory_refuses_when_written_gives_the_code_back(setup: Any) -> None:
    """The run closed because the directory refused the new password (in its history) and
    changed nothing: the code is live again and the refusal goes to the person; a run that
    changed something, or ended otherwise, keeps the code used."""
    svc, clock, app = setup
    read = ("account_status", "ok", None)
    code = ask(svc)
    refused = _run("closed", read, ("reset_password", "failed", "in_history"))
    with pytest.raises(PasswordRefused) as caught:
        svc.redeem_and_start("alice", code, "reset", lambda _p: refused, new_password="a long enough new password")
    assert caught.value.reason == "in_history" and str(caught.value) == "reset_password: failed"
    for kept in (
        _run("closed", read, ("unlock_account", "ok", None), ("reset_password", "failed", "in_history")),
        _run("closed", read, ("reset_password", "failed", "too_young")),
        _run("escalated", read, ("reset_password", "failed", "in_history")),
        _run("resolved", read, ("reset_password", "ok", None)),
    ):
        clock.advance(minutes=61)  # within the account's budget of code mails
        code = ask(svc)
        got = svc.redeem_and_start("alice", code, "reset", lambda _p, k=kept: k, new_password="a long enough password")
        assert got is kept
        with pytest.raises(CodeInvalid):  # used: the run changed something, or it is not a password choice
            svc.redeem("alice", code, "reset", new_password="a long enough new password")
    with app.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT reason FROM audit_event WHERE action = 'selfservice.code_restored'")
        assert [tuple(r) for r in rows] == [("in_history",)]


def test_each_password_the_directory_refuses_spends_one_of_the_codes_tries(setup: Any) -> None:
    """A code given back after the directory refused the written password counts that as a
    try: one code cannot ask the directory without end which passwords it refuses (those in
    the account's history). With wrong codes typed before, the budget is shared."""
    svc, _clock, app = setup
    read = ("account_status", "ok", None)
    refused = _run("closed", read, ("reset_password", "failed", "in_history"))
    code = ask(svc)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    with pytest.raises(CodeInvalid):  # one wrong code first: 1 of 5 tries
        svc.redeem("alice", wrong, "reset", new_password="a long enough new password")
    for _ in range(3):  # tries 2, 3, 4: given back each time
        with pytest.raises(PasswordRefused):
            svc.redeem_and_start("alice", code, "reset", lambda _p: refused, new_password="a long enough password")
    got = svc.redeem_and_start("alice", code, "reset", lambda _p: refused, new_password="a long enough password")
    assert got is refused  # the fifth try: the code stays used, the closed ticket is the answer
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")
    with app.engine.connect() as conn:
        restored = conn.exec_driver_sql(
            "SELECT count(*) FROM audit_event WHERE action = 'selfservice.code_restored'"
        ).scalar()
        tries = conn.exec_driver_sql("SELECT tries, state FROM selfservice_code ORDER BY id DESC LIMIT 1").first()
    assert restored == 3
    assert tuple(tries) == (4, "used")


def test_a_run_refused_before_its_ticket_spends_no_try(setup: Any) -> None:
    """Given back because of Firstline (every worker busy), not the password: no try spent."""
    svc, _clock, _app = setup
    code = ask(svc)
    for _ in range(6):
        proof = svc.redeem("alice", code, "reset", new_password="a long enough new password")
        assert svc.give_back(proof, "queue_full") is True
    svc.redeem("alice", code, "reset", new_password="a long enough new password")


def test_a_code_is_not_given_back_when_a_newer_one_exists_or_it_expired(setup: Any) -> None:
    svc, clock, _app = setup
    code = ask(svc)
    proof = svc.redeem("alice", code, "reset", new_password="a long enough new password")
    ask(svc)  # a newer code: the older one stays used
    assert svc.give_back(proof, "queue_full") is False
    newest = ask(svc)
    proof = svc.redeem("alice", newest, "reset", new_password="a long enough new password")
    clock.advance(minutes=11)
    assert svc.give_back(proof, "queue_full") is False
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", newest, "reset", new_password="a long enough new password")


def test_an_error_that_may_come_after_the_ticket_keeps_the_code_used(setup: Any) -> None:
    from runner.errors import LedgerError

    def ledger_down(_proof: Any) -> None:
        raise LedgerError("the ledger went away")

    svc, _clock, _app = setup
    code = ask(svc)
    with pytest.raises(LedgerError):
        svc.redeem_and_start("alice", code, "reset", ledger_down, new_password="a long enough new password")
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", code, "reset", new_password="a long enough new password")


def test_the_control_character_refusal_has_its_dutch() -> None:
    """The portal shows redeem's own message; its Dutch lives in the catalogue (portal/texts.py)."""
    from runner.selfservice import CONTROL_CHARACTER_MESSAGE
    from tests.unit.portal.dutch_catalogue import untranslated

    assert untranslated([CONTROL_CHARACTER_MESSAGE]) == ([], [])


def test_nothing_typed_is_masked_in_the_log_before_the_code_is_proven(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may send the reset form: what it carries must not be able to blank text (a
    login, an address, a ticket number) from every log line. Once the code is proven, the
    code and the new password are masked."""
    from runner import oplog

    monkeypatch.setattr(oplog, "_GLOBAL_SCRUB", oplog._Remembered())
    svc, _clock, _app = setup
    code = ask(svc)
    assert code is not None
    oplog._GLOBAL_SCRUB = oplog._Remembered()  # what sending the code remembered: another process's
    wrong = "87654321" if code != "87654321" else "12345678"
    with pytest.raises(CodeInvalid):
        svc.redeem("alice", wrong, "reset", new_password="FL-000123 from 10.0.0.9")
    with pytest.raises(CodeInvalid):
        svc.redeem("nobody-here", code, "reset", new_password="tick it")
    for typed in ("FL-000123 from 10.0.0.9", wrong, "tick it"):
        assert oplog.scrub_text(f"see {typed}") == f"see {typed}"
    svc.redeem("alice", code, "reset", new_password="a long enough new password")
    assert oplog.scrub_text(f"code {code}") == "code [REDACTED]"
    assert oplog.scrub_text("echo a long enough new password") == "echo [REDACTED]"
