"""The `firstline` command end to end against the real lab slapd and SMTP sink.

Runs the identity runbooks as an operator would (separate processes, real directory),
then greps every store Firstline writes — database + WAL (or every row on PostgreSQL: the
operator flow runs on both databases), operational log, audit
checkpoints, audit exports, `tickets show` output, delivered mail — for every secret
that passed through: the generated temporary password, the employee's old and new
passwords, and the directory service account's own credential.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import Connection, Server, Tls

from tests.databases import MakeDatabaseUrl, database_bytes
from tests.integration.conftest import REPO, start_lab

pytestmark = pytest.mark.integration
VAR = REPO / "var" / "lab"
PEOPLE = "ou=people,dc=example,dc=org"
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


def _server() -> Server:
    return Server(
        "127.0.0.1",
        port=6636,
        use_ssl=True,
        tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(VAR / "ca" / "ca.crt")),
    )


def _bind(dn: str, password: str) -> bool:
    conn = Connection(_server(), dn, password)
    ok = bool(conn.bind())
    conn.unbind()
    return ok


@pytest.fixture(scope="module")
def lab() -> None:
    start_lab("slapd", "smtp")


@pytest.fixture
def account(lab: None) -> Iterator[str]:
    """A fresh demo employee with a known password, created by the directory admin."""
    admin = Connection(
        _server(), "cn=admin,dc=example,dc=org", (VAR / "slapd" / "secrets" / "admin").read_text().strip()
    )
    assert admin.bind()
    uid = f"e2e{secrets.token_hex(3)}"
    assert admin.add(
        f"uid={uid},{PEOPLE}",
        ["inetOrgPerson"],
        {
            "uid": uid,
            "cn": f"Test {uid}",
            "givenName": "Test",
            "sn": "Person",
            "mail": f"{uid}@example.org",
            "userPassword": "Initial-Passw0rd-9981",
        },
    ), admin.result
    yield uid
    admin.delete(f"uid={uid},{PEOPLE}")
    admin.unbind()


@pytest.fixture
def env(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> dict[str, str]:
    return {
        **os.environ,
        "FIRSTLINE_DATABASE_URL": make_database_url(tmp_path / "ledger.db"),
        "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
        "FIRSTLINE_AUDIT_KEY_FILE": str(tmp_path / "keys" / "audit.key"),
        "FIRSTLINE_LOG_FILE": str(tmp_path / "firstline.log"),
        "FIRSTLINE_ENVIRONMENT": "test",
    }


def fl(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIRSTLINE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def _lock(uid: str) -> None:
    for _ in range(3):  # ppolicy: pwdMaxFailure 3
        assert not _bind(f"uid={uid},{PEOPLE}", "wrong-password")


@pytest.mark.both_databases
def test_operator_flow_fixes_the_directory_and_leaves_no_secret_behind(
    env: dict[str, str], account: str, tmp_path: Path
) -> None:
    uid, dn = account, f"uid={account},{PEOPLE}"
    mail_before = set((VAR / "smtp" / "mail").glob("*"))
    _lock(uid)
    assert not _bind(dn, "Initial-Passw0rd-9981")  # really locked

    r = fl(env, "run", "account-unlock", "-p", f"user={uid}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Resolved FL-000001" in r.stdout and "Unlock the account" in r.stdout
    assert _bind(dn, "Initial-Passw0rd-9981")  # the directory's state changed

    r = fl(env, "run", "password-reset", "-p", f"user={uid}")
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"temporary password \(shown once, not stored\): (\S+)", r.stderr)
    assert m, r.stderr
    temporary = m.group(1)
    assert _bind(dn, temporary)

    chosen = f"Fresh {secrets.token_hex(5)} Horse-Battery"
    r = fl(
        env,
        "run",
        "password-change",
        "--as",
        uid,
        "--role",
        "employee",
        "--secret",
        "old_password",
        "--secret",
        "new_password",
        stdin=f"{temporary}\n{chosen}\n",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert _bind(dn, chosen) and not _bind(dn, temporary)

    r = fl(env, "audit", "verify")
    assert r.returncode == 0 and re.fullmatch(r"ok \d+ events\n", r.stdout), r.stdout

    shown = fl(env, "tickets", "show", "FL-000002").stdout + fl(env, "tickets", "show", "FL-000003").stdout
    assert "[REDACTED]" in shown
    exported = (
        fl(env, "audit", "export", "--format", "jsonl").stdout + fl(env, "audit", "export", "--format", "csv").stdout
    )
    stores = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    stores += database_bytes(env["FIRSTLINE_DATABASE_URL"])  # PostgreSQL: every row (SQLite: the file again)
    mails = b"".join(p.read_bytes() for p in set((VAR / "smtp" / "mail").glob("*")) - mail_before)
    assert mails.count(uid.encode()) >= 3  # three notifications were delivered
    service_password = (VAR / "slapd" / "secrets" / "firstline").read_text().strip()
    for secret in (temporary, chosen, "Initial-Passw0rd-9981", service_password):
        assert secret.encode() not in stores, "a secret reached the database, log or checkpoints"
        assert secret not in exported and secret not in shown
        assert secret.encode() not in mails


@pytest.mark.parametrize("hostile", ["*", ")(uid=*", "admin*)(|(uid=*", "a\\2a", "x" * 200])
def test_hostile_account_names_are_refused_with_a_message_and_no_ticket(
    env: dict[str, str], lab: None, hostile: str
) -> None:
    r = fl(env, "run", "account-unlock", "-p", f"user={hostile}")
    assert r.returncode == 2 and "parameter 'user'" in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert fl(env, "tickets", "list").stdout.strip() == "No tickets."


def test_unknown_account_is_closed_for_the_requester_to_correct(env: dict[str, str], lab: None) -> None:
    """Not an escalation: exit 4, guidance in the chosen language, state in --json, `--state closed`."""
    r = fl(env, "run", "account-unlock", "-p", "user=nobody-here")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "Not done FL-000001: you can fix this yourself: The account does not exist." in r.stdout
    assert "try again" in r.stdout and "Traceback" not in r.stdout + r.stderr
    r = fl(env, "run", "account-unlock", "-p", "user=nobody-here", "--lang", "nl")
    assert r.returncode == 4 and "dit kunt u zelf oplossen" in r.stdout and "probeer het opnieuw" in r.stdout
    r = fl(env, "run", "account-unlock", "-p", "user=nobody-here", "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 4 and data["state"] == "closed" and data["reason"] == "not_found" and data["guidance"]
    shown = fl(env, "tickets", "show", "FL-000001").stdout
    assert "closed, requester_action_needed: The account does not exist." in shown
    assert "escalated" not in shown
    listed = fl(env, "tickets", "list", "--state", "closed").stdout.splitlines()
    assert len(listed) == 3 and all(" closed " in line for line in listed)
    assert fl(env, "tickets", "list", "--state", "escalated").stdout == "No tickets.\n"


def test_a_too_short_password_exits_4_and_changes_nothing(env: dict[str, str], account: str) -> None:
    r = fl(
        env, "run", "password-change", "--as", account, "--role", "employee",
        "--secret", "old_password", "--secret", "new_password",
        stdin="Initial-Passw0rd-9981\nShort-1\n",
    )  # fmt: skip
    assert r.returncode == 4, r.stdout + r.stderr
    assert "Short-1" not in r.stdout + r.stderr and "Initial-Passw0rd" not in r.stdout + r.stderr
    assert _bind(f"uid={account},{PEOPLE}", "Initial-Passw0rd-9981")


def test_the_operator_and_the_requester_are_both_in_the_audit(env: dict[str, str], account: str) -> None:
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    r = fl(env, "run", "account-status", "--as", account, "--role", "employee")
    assert r.returncode == 0, r.stdout + r.stderr
    events = [json.loads(line) for line in fl(env, "audit", "export").stdout.splitlines()]
    run_events = [e for e in events if e["ticket"] == "FL-000001"]
    assert [e["action"] for e in run_events] == ["ticket.opened", "ticket.resolved"]
    # --as is recorded as the portal records that person at sign-in (runner.routing)
    assert all(e["actor"] == me and e["on_behalf_of"] == f"{account}@example.org" for e in run_events)
    assert f"requester {account}@example.org, opened by {me}," in fl(env, "tickets", "show", "FL-000001").stdout


def test_audit_export_since_compares_times_in_any_offset(env: dict[str, str], account: str) -> None:
    """The reported case: `--since 2026-11-30T04:22+01:00` returned nothing although later events existed."""
    from datetime import UTC, datetime, timedelta, timezone

    assert fl(env, "run", "account-status", "-p", f"user={account}").returncode == 0
    events = [json.loads(line) for line in fl(env, "audit", "export").stdout.splitlines()]
    first = datetime.fromisoformat(events[0]["ts"]) - timedelta(minutes=1)
    for tz in (timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30)), UTC):
        local = first.astimezone(tz)
        for spelled in (local.strftime("%Y-%m-%dT%H:%M%z"), local.isoformat(timespec="minutes")):
            r = fl(env, "audit", "export", "--since", spelled)
            assert r.returncode == 0 and len(r.stdout.splitlines()) == len(events), (spelled, r.stderr)
            r = fl(env, "audit", "export", "--until", spelled)
            assert r.returncode == 0 and r.stdout == "", spelled


def test_edited_runbook_is_refused_until_vetted_again(env: dict[str, str], account: str, tmp_path: Path) -> None:
    books = tmp_path / "runbooks"
    shutil.copytree(REPO / "runbooks", books)
    env = {**env, "FIRSTLINE_RUNBOOKS_DIR": str(books)}
    path = books / "account-status.yaml"
    path.write_text(path.read_text() + "\n# harmless-looking edit\n")
    r = fl(env, "run", "account-status", "-p", f"user={account}")
    assert r.returncode == 2 and "changed since it was vetted" in r.stderr
    r = fl(env, "runbooks", "check")
    assert r.returncode == 1 and f"{path}:1: runbook 'account-status' changed since it was vetted" in r.stdout
    assert fl(env, "runbooks", "vet", "account-status", "--by", "reviewer").returncode == 0
    r = fl(env, "run", "account-status", "-p", f"user={account}")
    assert r.returncode == 0, r.stdout + r.stderr
    events = fl(env, "audit", "export").stdout
    assert '"action": "run.refused"' in events and '"action": "runbook.vetted"' in events


def test_unreachable_directory_escalates_with_the_reason(env: dict[str, str], account: str, tmp_path: Path) -> None:
    inv = (REPO / "lab" / "inventory.yaml").read_text().replace("ldaps://127.0.0.1:6636", "ldaps://127.0.0.1:6699")
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "inventory.yaml").write_text(inv)
    os.symlink(REPO / "var", tmp_path / "var")  # keep the inventory's relative secret paths valid
    env = {**env, "FIRSTLINE_INVENTORY": str(tmp_path / "lab" / "inventory.yaml")}
    r = fl(env, "run", "account-unlock", "-p", f"user={account}")
    assert r.returncode == 1 and "cannot be reached" in r.stdout, r.stdout + r.stderr
    assert "reason unreachable" in fl(env, "tickets", "show", "FL-000001").stdout


def test_wrong_service_credentials_escalate_as_auth_failed(env: dict[str, str], account: str, tmp_path: Path) -> None:
    (tmp_path / "bad-secret").write_text("not-the-service-password")
    inv = (
        (REPO / "lab" / "inventory.yaml")
        .read_text()
        .replace(
            "password: {file: ../var/lab/slapd/secrets/firstline}", f"password: {{file: {tmp_path / 'bad-secret'}}}"
        )
    )
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "inventory.yaml").write_text(inv)
    os.symlink(REPO / "var", tmp_path / "var")
    env = {**env, "FIRSTLINE_INVENTORY": str(tmp_path / "lab" / "inventory.yaml")}
    r = fl(env, "run", "account-status", "-p", f"user={account}")
    assert r.returncode == 1 and "refused the service account" in r.stdout, r.stdout + r.stderr
    assert "not-the-service-password" not in r.stdout + r.stderr


def test_runbooks_list_of_an_empty_folder_says_so(env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "no-runbooks-here"
    empty.mkdir()
    done = fl({**env, "FIRSTLINE_RUNBOOKS_DIR": str(empty)}, "runbooks", "list")
    assert done.returncode == 0, done.stderr
    assert f"No runbooks in {empty}" in done.stdout and "FIRSTLINE_RUNBOOKS_DIR" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_firstlines_own_messages_follow_the_chosen_language(env: dict[str, str], account: str) -> None:
    """`--lang nl` printed Firstline's own outcome messages in English ("The current password is
    not correct.", "The account is locked. Ask for it to be unlocked first.") although Dutch
    versions exist (runner.texts.localize, used by the portal)."""
    change = ("run", "password-change", "--as", account, "--role", "employee", "--secret", "old_password")
    change += ("--secret", "new_password")
    fresh = f"Fresh {secrets.token_hex(5)} Horse-Battery\n"
    r = fl(env, *change, "--lang", "nl", stdin="Not-The-Password-1\n" + fresh)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "Het huidige wachtwoord klopt niet." in r.stdout and "dit kunt u zelf oplossen" in r.stdout
    assert "The current password is not correct." not in r.stdout
    r = fl(env, *change, "--lang", "en", stdin="Not-The-Password-1\n" + fresh)
    assert r.returncode == 4 and "The current password is not correct." in r.stdout, r.stdout

    _lock(account)
    r = fl(env, *change, "--lang", "nl", stdin="Initial-Passw0rd-9981\n" + fresh)
    # closed, not escalated: a lockout after failed sign-ins is lifted by the person ("Locked out?")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "Het account is geblokkeerd na mislukte aanmeldingen. Ontgrendel het eerst" in r.stdout, r.stdout
    assert "Unlock it first" not in r.stdout

    r = fl(env, "run", "account-unlock", "-p", "user=nobody-here", "--lang", "nl")
    assert r.returncode == 4 and "Het account bestaat niet." in r.stdout, r.stdout
    r = fl(env, "run", "account-unlock", "-p", f"user={account}", "--lang", "nl")
    assert r.returncode == 0 and "Opgelost" in r.stdout, r.stdout + r.stderr


def test_wrong_current_passwords_are_counted_across_unlocks(env: dict[str, str], account: str) -> None:
    """Unlocking an account clears the directory's count of failed binds, so a session could
    guess two current passwords, unlock the account itself and guess on (a tester's find).
    Firstline counts the wrong current passwords in its ledger: at the limit the change is
    refused before the directory is asked, even with the right password, until the window
    passes; Forgot password stays open."""
    env = {**env, "FIRSTLINE_CURRENT_PASSWORD_TRIES": "3"}
    dn = f"uid={account},{PEOPLE}"
    change = ("run", "password-change", "--as", account, "--role", "employee", "--secret", "old_password")
    change += ("--secret", "new_password")
    fresh = f"Fresh {secrets.token_hex(5)} Horse-Battery"
    for guess in range(3):
        r = fl(env, *change, stdin=f"Guess-{secrets.token_hex(4)}\n{fresh}\n")
        assert r.returncode == 4, r.stdout + r.stderr
        assert "The current password is not correct." in r.stdout or "The account is locked" in r.stdout, r.stdout
        if guess == 1 or "The account is locked" in r.stdout:
            r = fl(env, "run", "account-unlock", "-p", f"user={account}")  # as the session could
            assert r.returncode == 0, r.stdout + r.stderr
    r = fl(env, *change, stdin=f"Initial-Passw0rd-9981\n{fresh}\n")  # now even the right one
    assert r.returncode == 2, r.stdout + r.stderr
    assert "typed wrong 3 times in the last 24 hours" in r.stderr and "Forgot your password?" in r.stderr
    assert _bind(dn, "Initial-Passw0rd-9981") and not _bind(dn, fresh)  # nothing changed
    r = fl(env, *change, "--lang", "nl", stdin=f"Initial-Passw0rd-9981\n{fresh}\n")
    assert r.returncode == 2 and "3 keer verkeerd getypt" in r.stderr, r.stderr


def _at_terminal(env: dict[str, str], args: list[str], answers: list[str]) -> tuple[int, str]:
    """``firstline *args`` with a real terminal (a pty that is its controlling terminal, as
    getpass needs): each answer is typed after the next prompt ending in ": ". Returns the
    exit code and everything the terminal showed (prompts and error lines)."""
    import fcntl
    import select
    import termios
    import time

    master, slave = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [FIRSTLINE, *args],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,  # the child's own terminal, set before exec
    )
    os.close(slave)
    seen, pending, deadline = b"", list(answers), time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if pending and seen.endswith(b": "):  # a prompt waits (an answer ends with a line break)
                    os.write(master, pending.pop(0).encode() + b"\n")
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, seen.decode("utf-8", "replace")


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_a_new_password_typed_at_a_terminal_is_asked_twice(env: dict[str, str], account: str, lang: str) -> None:
    """At a terminal the CLI asks for a new password twice, as the portal's form does: two
    different values run nothing; the same value twice changes the password."""
    dn, old, new = f"uid={account},{PEOPLE}", "Initial-Passw0rd-9981", f"Zebra lamp {secrets.token_hex(3)} koffie 7"
    args = ["run", "password-change", "--as", account, "--role", "employee", "--lang", lang]
    args += ["--secret", "old_password", "--secret", "new_password"]
    code, shown = _at_terminal(env, args, [old, new, new + "!"])
    again = {"en": "new_password (again):", "nl": "new_password (nogmaals):"}[lang]
    assert "old_password:" in shown and "new_password:" in shown and again in shown, shown
    assert shown.count(again) == 1 and "old_password (" not in shown  # only the new password twice
    assert code == 2, shown
    assert {
        "en": "the two values typed for secret 'new_password' are not the same",
        "nl": "de twee waarden die voor geheim 'new_password' zijn getypt zijn niet gelijk",
    }[lang] in shown, shown
    assert new not in shown and old not in shown  # nothing typed is echoed
    assert fl(env, "tickets", "list").stdout == "No tickets.\n"  # nothing ran
    assert _bind(dn, old) and not _bind(dn, new)
    code, shown = _at_terminal(env, args, [old, new, new])
    assert code == 0, shown
    assert _bind(dn, new) and not _bind(dn, old)
