"""The CLI: exit codes, plain messages, no tracebacks, secrets never on the command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from connectors.base import Rejected
from runner import cli
from runner.service import Firstline
from tests.fakes import FakeConnector


@pytest.fixture
def runner(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli, "_app", lambda: app)
    return CliRunner()


def _invoke(runner: CliRunner, args: list[str], stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli.app, args, input=stdin, standalone_mode=True)
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    return result.exit_code, " ".join(text.replace("│", " ").split())  # rich wraps usage errors in a box


def test_run_prints_ticket_and_exits_zero_on_resolved(runner: CliRunner) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        "unlock_account": [{"unlocked": True}],
    }
    code, text = _invoke(runner, ["run", "fake-unlock", "-p", "user=alice", "--as", "alice"])
    assert code == 0
    assert "Ticket FL-000001 opened." in text and "Resolved FL-000001: Account alice unlocked." in text
    assert "✓ unlock" in text


def test_run_exits_one_on_escalated(runner: CliRunner) -> None:
    FakeConnector.script = {"account_status": [{"locked": True}], "unlock_account": [{"unlocked": True}]}
    code, text = _invoke(runner, ["run", "fake-unlock", "-p", "user=alice"])
    assert code == 1 and "Escalated FL-000001 to second level" in text


def test_dry_run_touches_nothing(runner: CliRunner, app: Firstline) -> None:
    code, text = _invoke(runner, ["run", "fake-unlock", "-p", "user=alice", "--dry-run"])
    assert code == 0 and "fake.unlock_account on f1" in text and "only when" in text
    assert FakeConnector.calls == [] and app.list_tickets() == []


def test_secret_on_command_line_is_refused(runner: CliRunner, app: Firstline) -> None:
    code, text = _invoke(runner, ["run", "fake-reset", "-p", "user=bob", "-p", "new_password=Hunter2Hunter2"])
    assert code == 2 and "use --secret new_password" in text
    assert app.list_tickets() == []


def test_secret_from_stdin_and_generated_password_shown_once(runner: CliRunner, app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [{"temporary_password": "Tmp-Pw-998877"}]}
    code, text = _invoke(
        runner, ["run", "fake-reset", "-p", "user=bob", "--secret", "new_password"], stdin="Chosen-Pw-112233\n"
    )
    assert code == 0 and "Tmp-Pw-998877" in text and "shown once" in text
    assert FakeConnector.calls[0][2]["new_password"] == "Chosen-Pw-112233"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "fake-unlock", "-p", "user"], "each --param must be key=value"),
        (["run", "fake-unlock", "--role", "root"], "'--role' must be one of: agent, employee"),
        (
            ["tickets", "list", "--state", "open"],
            "'--state' must be one of: queued, running, resolved, escalated, closed",
        ),
        (["audit", "export", "--format", "xml"], "'--format' must be one of: jsonl, csv"),
        (["audit", "export", "--since", "yesterday"], "'yesterday' is not a date or time"),
        (["run", "fake-unlock", "--lang", "fr"], "'--lang' must be one of: en, nl"),
    ],
)
def test_bad_options_get_a_usage_error(
    app: Firstline,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    """Through main(), as the console script runs it: exit 2, one line on stderr."""
    monkeypatch.setattr(cli, "_app", lambda: app)
    monkeypatch.setattr("sys.argv", ["firstline", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    assert info.value.code == 2 and expected in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""


def test_domain_errors_become_messages_not_tracebacks(
    app: Firstline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_app", lambda: app)
    for argv, expected in (
        (["run", "no-such-runbook"], "no runbook named 'no-such-runbook'"),
        (["run", "fake-unlock", "-p", "user=)(uid=*"], "parameter 'user' is not a valid account name"),
        (["tickets", "show", "FL-999999"], "ticket FL-999999 does not exist"),
        (["tickets", "show", "'; drop table ticket;--"], "is not a ticket number"),
    ):
        monkeypatch.setattr("sys.argv", ["firstline", *argv])
        with pytest.raises(SystemExit) as info:
            cli.main()
        err = capsys.readouterr().err
        assert info.value.code == 2 and expected in err and "Traceback" not in err


def test_audit_verify_and_tickets_commands(runner: CliRunner) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    _invoke(runner, ["run", "fake-unlock", "-p", "user=alice"])
    code, text = _invoke(runner, ["audit", "verify"])
    assert code == 0 and text == "ok 4 events"
    code, text = _invoke(runner, ["tickets", "show", "FL-000001"])
    assert code == 0 and "resolution solved_by_automation" in text and "check [ok]" in text
    code, text = _invoke(runner, ["tickets", "list", "--requester", "nobody"])
    assert code == 0 and "No tickets." in text
    code, text = _invoke(runner, ["audit", "export", "--format", "csv"])
    assert code == 0 and text.startswith("seq,ts,actor") and text.count("ticket.") == 2


def test_process_exit_code_is_one_when_escalated(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through main(), as the console script runs it (not the test runner's standalone mode)."""
    monkeypatch.setattr(cli, "_app", lambda: app)
    FakeConnector.script = {"account_status": [{"locked": True}], "unlock_account": [Rejected("no", reason="x")]}
    monkeypatch.setattr("sys.argv", ["firstline", "run", "fake-unlock", "-p", "user=alice"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1


def test_dutch_progress_and_outcome(runner: CliRunner) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    code, text = _invoke(runner, ["run", "fake-unlock", "-p", "user=alice", "--lang", "nl"])
    assert code == 0 and "Ticket FL-000001 geopend." in text and "unlock: Niet nodig" in text
    assert "Opgelost FL-000001: Account alice unlocked." in text


def test_requester_fixable_failure_exits_4_with_guidance(
    app: Firstline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through main(): exit 4 (not 1), the connector's message and the guidance in the chosen
    language (the message is one of Firstline's own, so it is translated too: runner.texts)."""
    monkeypatch.setattr(cli, "_app", lambda: app)
    for lang, guidance, message in (
        ("en", "You can fix this yourself", "The account does not exist."),
        ("nl", "Dit kunt u zelf oplossen", "Het account bestaat niet."),
    ):
        FakeConnector.script = {
            "account_status": [{"locked": True}],
            "unlock_account": [Rejected("The account does not exist.", reason="not_found", requester_action=True)],
        }
        monkeypatch.setattr("sys.argv", ["firstline", "run", "fake-unlock", "-p", "user=alice", "--lang", lang])
        with pytest.raises(SystemExit) as info:
            cli.main()
        out = capsys.readouterr().out
        assert info.value.code == 4 and message in out and guidance in out
    code, text = _invoke(CliRunner(), ["tickets", "list", "--state", "closed"])
    assert code == 0 and text.count(" closed ") == 2
