"""Runner checks that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update

from connectors.base import InvalidInput, Rejected
from connectors.registry import PluginError, _check
from runner.api import open_app
from runner.errors import ConfigError, ParameterError, RunbookError
from runner.ledger.audit import Actor, chain_hash
from runner.ledger.tables import audit_checkpoint, audit_event, audit_head
from runner.redaction import REDACTED, WITHHELD, Scrubber
from runner.runbook import load_runbook
from runner.service import Firstline
from runner.settings import Settings, private_file
from tests.databases import database_bytes
from tests.fakes import FakeConnector
from tests.unit.core.conftest import RESET

pytestmark = pytest.mark.both_databases

# non-ASCII, quotes and a backslash: each library spelling of it differs
CREDENTIAL = 'Wächter-"²"-\\-Sommer-4711'
MULTI_LINE = "-----BEGIN KEY-----\nAAAAlineONEsecret\nBBBBlineTWOsecret\n-----END KEY-----"


@pytest.mark.parametrize(
    "shown",
    [
        json.dumps(CREDENTIAL, ensure_ascii=False)[1:-1],  # json.dumps(..., ensure_ascii=False): é stays, " → \"
        CREDENTIAL.encode("unicode_escape").decode("ascii"),  # Python's unicode_escape codec: \xe4, \\
    ],
    ids=["json-non-ascii", "unicode-escape"],
)
def test_the_scrubber_masks_the_spellings_other_libraries_use(shown: str) -> None:
    assert shown != CREDENTIAL
    masked = Scrubber([CREDENTIAL]).text(f"server said <{shown}>")
    assert masked == f"server said <{REDACTED}>"


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own() -> None:
    """A remote error that quotes one line of a private key (say paramiko's) reveals that line."""
    masked = Scrubber([MULTI_LINE]).text("cannot parse 'AAAAlineONEsecret' then BBBBlineTWOsecret")
    assert "lineONE" not in masked and "lineTWO" not in masked
    assert masked.count(REDACTED) == 2


_LEAKS = {
    "output-to-input": (
        "  - id: show\n    connector: fake\n    action: echo\n"
        '    with: {text: "{{ steps.reset.temporary_password }}"}\n',
        "secret output 'temporary_password' may only feed secret inputs",
    ),
    "param-to-when": (
        "  - id: show\n    connector: fake\n    action: echo\n    with: {text: x}\n"
        '    when: "{{ params.new_password }}"\n',
        "secret parameter 'new_password' may only feed secret inputs",
    ),
    "output-to-target": (
        "  - id: show\n    connector: fake\n    action: echo\n    with: {text: x}\n"
        '    target: "{{ steps.reset.temporary_password }}"\n',
        "secret output 'temporary_password' may only feed secret inputs",
    ),
}


@pytest.mark.parametrize("case", sorted(_LEAKS))
def test_a_secret_can_only_feed_a_secret_input(tmp_path: Path, case: str) -> None:
    """A temporary password or a typed secret must never travel where it is stored or shown
    (a non-secret input, a ``when`` condition, a ``target`` name): the runbook does not load."""
    step, problem = _LEAKS[case]
    text = RESET.replace("on_failure:", step + "on_failure:")
    path = tmp_path / "fake-reset.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as info:
        load_runbook(path, {"fake": FakeConnector})
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_a_secret_input_written_as_a_literal_does_not_load(tmp_path: Path) -> None:
    """A password typed into a runbook file would sit in git and in every vetted copy."""
    text = RESET.replace('new_password: "{{ params.new_password }}"', "new_password: Sommer-Wind-4711")
    path = tmp_path / "fake-reset.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as info:
        load_runbook(path, {"fake": FakeConnector})
    assert any("secret input 'new_password' must not be a literal" in p for p in info.value.problems)


def test_a_secret_parameter_cannot_have_a_default(tmp_path: Path) -> None:
    """A default secret would be a password written in the runbook, used for everyone."""
    text = RESET.replace(
        "{name: new_password, type: secret, required: false}",
        '{name: new_password, type: secret, required: false, default: "Sommer-Wind-4711"}',
    )
    path = tmp_path / "fake-reset.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as info:
        load_runbook(path, {"fake": FakeConnector})
    assert any("a secret parameter cannot have a default" in p for p in info.value.problems)
    assert not any("Sommer-Wind-4711" in p for p in info.value.problems)


def _stored(app: Firstline) -> bytes:
    """Database (+WAL), operator log, audit checkpoints and both audit exports."""
    s = app.settings
    paths = [s.audit_key_file.parent / "audit-checkpoints.jsonl"]
    if s.log_file is not None:
        paths.append(s.log_file)
    blob = database_bytes(s.database_url) + b"".join(p.read_bytes() for p in paths if p.exists())
    return blob + "".join(app.export_audit("jsonl")).encode() + "".join(app.export_audit("csv")).encode()


def test_a_typed_password_echoed_in_a_connector_error_reaches_no_store(app: Firstline) -> None:
    """The directory quotes the new password in its refusal: the ticket, audit and log get the
    refusal without it (the step's secret inputs join the run's scrubber)."""
    typed = "Zeer-Geheim-Wachtwoord-9182"
    FakeConnector.script = {"reset_password": [Rejected(f"server refused '{typed}': in history", reason="rejected")]}
    out = app.run("fake-reset", {"user": "alice", "new_password": typed}, requester="agent7")
    assert out.state == "escalated"
    assert typed not in out.message and out.message == WITHHELD["en"]
    assert typed.encode() not in _stored(app)


ECHO_LATER = RESET.replace(
    "\non_failure:", "\n  - id: check\n    connector: fake\n    action: echo\n    with: {text: x}\non_failure:"
)


def test_a_generated_password_echoed_by_a_later_step_reaches_no_store(settings: Settings) -> None:
    """A step's secret output (the temporary password) joins the scrubber at once: a later
    step's error that quotes it is stored without it."""
    (settings.runbooks_dir / "fake-reset.yaml").write_text(ECHO_LATER)
    app = open_app(settings, connectors={"fake": FakeConnector})
    try:
        app.vet("fake-reset", "reviewer")
        temp = "Tijdelijk-Wachtwoord-5521"
        FakeConnector.script = {
            "reset_password": [{"temporary_password": temp}],
            "echo": [Rejected(f"account was just given {temp}", reason="rejected")],
        }
        out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
        assert out.state == "escalated"
        assert temp not in out.message
        assert temp.encode() not in _stored(app)
    finally:
        app.close()


@pytest.mark.parametrize(
    "bad", ["Zomer\x07Wind-4711-Blauw", "Zomer\nWind-4711-Blauw", "Zomer\x1b[2JWind-4711", "Zomer\x85Wind-4711"]
)
def test_a_secret_with_control_characters_is_refused_before_any_ticket(app: Firstline, bad: str) -> None:
    """A bell, newline, ANSI escape or C1 control in a typed password is refused at the door
    (no ticket, no connector call), and the refusal does not quote it."""
    with pytest.raises(ParameterError) as err:
        app.run("fake-reset", {"user": "alice", "new_password": bad}, requester="agent7")
    assert "control" in str(err.value) and bad not in str(err.value)
    assert FakeConnector.calls == []
    assert app.list_tickets() == []


NOTE = """\
schema_version: 1
name: fake-note
title: {en: Leave a note}
category: identity/account
audience: [agent]
parameters:
  - {name: note, type: string}
steps:
  - id: say
    connector: fake
    action: echo
    with: {text: "{{ params.note }}"}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "Noted."}
"""


@pytest.mark.parametrize("bad", ["ok\nFL-999999 resolved", "geld \u202eneg", "x\x1b[2Jy", "zero\u200bwidth"])
def test_free_text_parameters_refuse_control_and_direction_characters(settings: Settings, bad: str) -> None:
    """A newline forges a ticket row when printed, a right-to-left override hides text, an ANSI
    escape clears a terminal: a string parameter without a pattern refuses them all."""
    (settings.runbooks_dir / "fake-note.yaml").write_text(NOTE)
    app = open_app(settings, connectors={"fake": FakeConnector})
    try:
        app.vet("fake-note", "reviewer")
        with pytest.raises(ParameterError, match="control or invisible"):
            app.run("fake-note", {"note": bad}, requester="agent7")
        assert FakeConnector.calls == [] and app.list_tickets() == []
    finally:
        app.close()


CHOICE = """\
schema_version: 1
name: fake-choice
title: {en: Printer}
category: test
audience: [agent]
parameters:
  - {name: printer, type: choice, source: printers}
steps:
  - id: send
    connector: fake
    action: echo
    with: {text: "{{ params.printer.queue }}"}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: done}
"""


def test_invalid_input_built_from_an_inventory_choice_escalates(settings: Settings) -> None:
    """The requester picked "office-1" from a list; the queue name the inventory holds for it is
    not theirs to fix: an InvalidInput about it goes to second level, not back to the requester."""
    (settings.runbooks_dir / "fake-choice.yaml").write_text(CHOICE)
    app = open_app(settings, connectors={"fake": FakeConnector})
    try:
        app.vet("fake-choice", "reviewer")
        FakeConnector.script = {"echo": [InvalidInput("The queue name is not valid.")]}
        out = app.run("fake-choice", {"printer": "office-1"}, requester="agent7")
        assert FakeConnector.calls and FakeConnector.calls[0][2] == {"text": "office-1"}
        assert out.state == "escalated"
        assert app.ticket(out.ticket_number)["assignment_group"] == "service-desk-l2"
    finally:
        app.close()


def test_an_audit_key_file_shorter_than_32_characters_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    key.write_text("short-key-1234567890\n")
    key.chmod(0o600)
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'fl.db'}",
        runbooks_dir=tmp_path,
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=key,
        log_file=None,
    )
    with pytest.raises(ConfigError, match="fewer than 32 characters") as err:
        settings.audit_secret()
    assert "short-key" not in str(err.value)


MODE = CHOICE.replace(
    "{name: printer, type: choice, source: printers}", "{name: mode, type: enum, values: [soft, hard]}"
)
MODE = MODE.replace("name: fake-choice", "name: fake-mode").replace("params.printer.queue", "params.mode")


@pytest.mark.parametrize("bad", ["HARD", "hard ", "medium", "soft,hard"])
def test_an_enum_parameter_takes_only_its_listed_values(settings: Settings, bad: str) -> None:
    (settings.runbooks_dir / "fake-mode.yaml").write_text(MODE)
    app = open_app(settings, connectors={"fake": FakeConnector})
    try:
        app.vet("fake-mode", "reviewer")
        with pytest.raises(ParameterError, match="must be one of: soft, hard"):
            app.run("fake-mode", {"mode": bad}, requester="agent7")
        assert FakeConnector.calls == [] and app.list_tickets() == []
    finally:
        app.close()


def test_an_audit_key_from_the_environment_shorter_than_32_characters_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'fl.db'}",
        runbooks_dir=tmp_path,
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "unused.key",
        audit_key="short-env-key-123",
        log_file=None,
    )
    with pytest.raises(ConfigError, match="at least 32 characters") as err:
        settings.audit_secret()
    assert "short-env-key" not in str(err.value)
    assert not (tmp_path / "unused.key").exists()  # no file key generated instead


def test_a_plugin_whose_name_differs_from_its_entry_point_is_refused() -> None:
    """An entry point ``ldap`` loading a class that calls itself ``fake`` would run under a
    name the runbooks were not vetted for."""
    with pytest.raises(PluginError, match="!= 'ldap'"):
        _check("ldap", "evil-dist", FakeConnector)


PATTERNED = MODE.replace(
    "{name: mode, type: enum, values: [soft, hard]}", '{name: mode, type: string, pattern: "[a-z]{3,8}"}'
)


@pytest.mark.parametrize("bad", ["ab", "toolongvalue", "ABC", "abc;rm"])
def test_a_string_parameter_must_match_its_whole_pattern(settings: Settings, bad: str) -> None:
    (settings.runbooks_dir / "fake-mode.yaml").write_text(PATTERNED)
    app = open_app(settings, connectors={"fake": FakeConnector})
    try:
        app.vet("fake-mode", "reviewer")
        with pytest.raises(ParameterError, match="expected format"):
            app.run("fake-mode", {"mode": bad}, requester="agent7")
        assert FakeConnector.calls == [] and app.list_tickets() == []
    finally:
        app.close()


def test_a_forged_checkpoint_is_reported_as_a_bad_signature(app: Firstline) -> None:
    """A checkpoint row nobody signed (wrong MAC) is named as forged, not trusted as a reference."""
    with app.engine.begin() as c:
        for i in range(6):
            app.audit.append(c, Actor("tester", ("agent",)), "test.event", outcome="success", target=f"t{i}")
    assert app.verify_audit().ok
    with app.engine.begin() as c:
        c.execute(insert(audit_checkpoint).values(seq=7, ts="2026-11-30T00:00:00+00:00", hash="0" * 64, mac="1" * 64))
    report = app.verify_audit()
    assert not report.ok and report.first_bad_seq == 7 and "bad signature" in report.problem


def test_an_edited_link_between_two_events_is_detected_at_its_sequence(app: Firstline) -> None:
    """Only the stored ``prev_hash`` of event 3 is changed (its own hash still matches its fields)."""
    with app.engine.begin() as c:
        for i in range(4):
            app.audit.append(c, Actor("tester", ("agent",)), "test.event", outcome="success", target=f"t{i}")
        c.execute(update(audit_event).where(audit_event.c.seq == 3).values(prev_hash="0" * 64))
    report = app.verify_audit()
    assert not report.ok and report.first_bad_seq == 3 and "does not link" in report.problem


def test_an_existing_log_file_readable_by_others_is_narrowed_to_its_owner(tmp_path: Path) -> None:
    log = tmp_path / "firstline.log"
    log.write_text("")
    log.chmod(0o644)
    private_file(log)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


INTS = MODE.replace("{name: mode, type: enum, values: [soft, hard]}", "{name: mode, type: int, min: 1, max: 7}")
TEXT = MODE.replace("{name: mode, type: enum, values: [soft, hard]}", "{name: mode, type: string, max_length: 12}")


@pytest.mark.parametrize(
    ("runbook", "bad", "says"),
    [
        (INTS, "0", "at least 1"),
        (INTS, "8", "at most 7"),
        (TEXT, "x" * 13, "too long"),
    ],
)
def test_number_and_length_bounds_are_enforced(settings: Settings, runbook: str, bad: str, says: str) -> None:
    (settings.runbooks_dir / "fake-mode.yaml").write_text(runbook)
    app = open_app(settings, connectors={"fake": FakeConnector})
    try:
        app.vet("fake-mode", "reviewer")
        with pytest.raises(ParameterError, match=says):
            app.run("fake-mode", {"mode": bad}, requester="agent7")
        assert FakeConnector.calls == [] and app.list_tickets() == []
    finally:
        app.close()


def test_a_chain_rewritten_everywhere_but_the_key_is_caught_by_the_signed_head(app: Firstline) -> None:
    """Database and checkpoint file both rewritten (no key): event 3 edited, every hash after it
    recomputed, the head's hash updated, checkpoints removed — only the head's HMAC is left to
    tell, and it does."""
    with app.engine.begin() as c:
        for i in range(4):
            app.audit.append(c, Actor("tester", ("agent",)), "test.event", outcome="success", target=f"t{i}")
    assert app.verify_audit().ok
    with app.engine.begin() as c:
        rows = [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]
        rows[2]["actor"] = "mallory"
        prev = rows[1]["hash"]
        for r in rows[2:]:
            r["prev_hash"], r["hash"] = prev, chain_hash(prev, r)
            prev = r["hash"]
            c.execute(
                update(audit_event)
                .where(audit_event.c.seq == r["seq"])
                .values(actor=r["actor"], prev_hash=r["prev_hash"], hash=r["hash"])
            )
        c.execute(update(audit_head).values(hash=prev))
        c.execute(delete(audit_checkpoint))
    if app.audit.checkpoint_file is not None and app.audit.checkpoint_file.exists():
        app.audit.checkpoint_file.write_text("")
    report = app.verify_audit()
    assert not report.ok and "signature" in report.problem
