"""The ``firstline`` command line. Exit codes: 0 resolved/ok, 1 escalated/check failed,
2 refused (bad input, not vetted, policy), 3 internal error (details in the log file)."""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from runner.errors import FirstlineError, RunbookError

app = typer.Typer(
    help="Firstline: vetted runbooks that fix first-level IT problems, every run a ticket.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
runbooks_app = typer.Typer(help="Check, list and vet runbooks.", no_args_is_help=True)
tickets_app = typer.Typer(help="Look at tickets.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and export the audit log.", no_args_is_help=True)
app.add_typer(runbooks_app, name="runbooks")
app.add_typer(tickets_app, name="tickets")
app.add_typer(audit_app, name="audit")
UI = {
    "en": {
        "opened": "Ticket {t} opened.",
        "resolved": "Resolved {t}",
        "escalated": "Escalated {t} to second level",
        "once": "(shown once, not stored)",
        "skipped": "Not needed",
    },
    "nl": {
        "opened": "Ticket {t} geopend.",
        "resolved": "Opgelost {t}",
        "escalated": "{t} doorgezet naar de tweede lijn",
        "once": "(eenmalig getoond, nergens opgeslagen)",
        "skipped": "Niet nodig",
    },
}


def _default_lang() -> str:
    lang = os.environ.get("FIRSTLINE_LANG") or os.environ.get("LANG", "")
    return "nl" if lang.lower().startswith("nl") else "en"


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _app() -> Any:
    from runner.api import open_app

    return open_app()


def _parse_params(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"'{item[:40]}' is not key=value (example: --param user=alice)", param_hint="--param"
            )
        if key in values:
            raise typer.BadParameter(f"'{key}' is given twice", param_hint="--param")
        values[key] = value
    return values


def _read_secret(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"{name}: ")
    line = sys.stdin.readline()
    if not line:
        raise typer.BadParameter(f"no value for secret '{name}' on standard input", param_hint="--secret")
    return line.rstrip("\n")


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="Runbook name, e.g. account-unlock.")],
    param: Annotated[list[str], typer.Option("--param", "-p", help="key=value, repeatable.")] = [],  # noqa: B006
    secret: Annotated[
        list[str],
        typer.Option(
            "--secret",
            help="Name of a secret parameter to read from the "
            "terminal (or one line of stdin); never on the command line.",
        ),
    ] = [],  # noqa: B006
    as_user: Annotated[
        str | None, typer.Option("--as", help="Requester (whose problem this is). Default: you.")
    ] = None,
    role: Annotated[str, typer.Option(help="Act as 'agent' (default) or 'employee' (self-service rules).")] = "agent",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the rendered steps; touch nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    lang: Annotated[str | None, typer.Option(help="en or nl (default: FIRSTLINE_LANG / LANG).")] = None,
) -> None:
    """Run a vetted runbook. Prints the ticket number and the outcome."""
    lang = lang or _default_lang()
    if lang not in UI:
        raise typer.BadParameter("must be en or nl", param_hint="--lang")
    ui = UI[lang]
    if role not in ("agent", "employee"):
        raise typer.BadParameter("must be 'agent' or 'employee'", param_hint="--role")
    values: dict[str, Any] = _parse_params(param)
    fl = _app()
    rb = fl.runbook(name)
    for pname in values:
        if pname in rb.secret_params:
            raise typer.BadParameter(
                f"'{pname}' is secret: use --secret {pname} so it stays out of shell history and ps",
                param_hint="--param",
            )
    for sname in secret:
        if sname not in rb.secret_params:
            raise typer.BadParameter(f"'{sname}' is not a secret parameter of {name}", param_hint="--secret")
        values[sname] = _read_secret(sname)
    me = getpass.getuser()
    requester = as_user or me
    roles = {"agent"} if role == "agent" else {"employee"}
    if dry_run:
        steps = fl.plan(name, values, requester=requester, roles=roles)
        out.print(f"[bold]Dry run of {name}[/] for {requester}: nothing will be changed.")
        for i, s in enumerate(steps, 1):
            cond = f"  [dim](only when {s.condition})[/]" if s.condition else ""
            out.print(
                f" {i}. {s.id}: {s.connector}.{s.action} on {s.target} with {json.dumps(s.inputs, default=str)}{cond}"
            )
        return

    def progress(kind: str, data: Any) -> None:
        if as_json:
            return
        if kind == "ticket.opened":
            out.print(ui["opened"].format(t=f"[bold]{data['ticket']}[/]"))
        elif kind == "step.finished":
            mark = {"ok": "[green]✓[/]", "skipped": "[dim]–[/]", "failed": "[red]✗[/]"}[data["status"]]
            message = ui["skipped"] if data["status"] == "skipped" else data["message"]
            note = "" if data["status"] == "ok" else f": {message}"
            out.print(f"  {mark} ", end="")
            out.print(f"{data['title'][lang]}{note}", markup=False)

    outcome = fl.run(
        name,
        values,
        requester=requester,
        roles=roles,
        channel="cli",
        actor_id=me if role == "agent" else requester,
        progress=progress,
    )
    if as_json:
        out.print_json(
            data={
                "ticket": outcome.ticket_number,
                "state": outcome.state,
                "reason": outcome.reason,
                "message": outcome.message,
            }
        )
    elif outcome.ok:
        out.print("[green]" + ui["resolved"].format(t=f"[/]{outcome.ticket_number}") + ":", end=" ")
        out.print(outcome.message, markup=False)
    else:
        out.print("[yellow]" + ui["escalated"].format(t=f"[/]{outcome.ticket_number}[yellow]") + "[/]:", end=" ")
        out.print(outcome.message, markup=False)
    for key, value in outcome.secrets.items():
        # Delivered once, to the person who ran it; never stored.
        err.print(f"[bold]{key.split('.')[-1].replace('_', ' ')}[/] {ui['once']}: ", end="")
        err.print(value, markup=False)
    raise typer.Exit(0 if outcome.ok else 1)


@runbooks_app.command("check")
def runbooks_check() -> None:
    """Lint every runbook and check each is vetted; prints file:line: problem."""
    problems = _app().check_runbooks()
    for p in problems:
        out.print(p, markup=False)
    if problems:
        err.print(f"{len(problems)} problem(s).")
        raise typer.Exit(1)
    out.print("All runbooks are valid and vetted.")


@runbooks_app.command("list")
def runbooks_list() -> None:
    """List runbooks with their vetting state."""
    from runner.runbook import load_all
    from runner.vetting import read_lock

    fl = _app()
    books, problems = load_all(fl.settings.runbooks_dir, fl.connectors)
    approvals = read_lock(fl.settings.runbooks_dir)
    for name, rb in sorted(books.items()):
        a = approvals.get(name)
        state = "vetted" if a and a.sha256 == rb.sha256 else "CHANGED since vetting" if a else "not vetted"
        out.print(f"{name:24} {state:22} {rb.model.title.en}")
    for p in problems:
        out.print(p, markup=False)


@runbooks_app.command("vet")
def runbooks_vet(
    name: Annotated[str, typer.Argument(help="Runbook to approve as it is now.")],
    by: Annotated[str, typer.Option("--by", help="Who reviewed and approves it.")],
) -> None:
    """Record approval of the runbook's current content (SHA-256) in runbooks/vetted.lock; audited."""
    sha = _app().vet(name, by)
    out.print(f"Vetted {name} ({sha[:12]}…) by {by}.")


@tickets_app.command("list")
def tickets_list(
    state: Annotated[str | None, typer.Option(help="in_progress, resolved or escalated.")] = None,
    requester: Annotated[str | None, typer.Option(help="Only this requester's tickets.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """List the newest tickets."""
    if state is not None and state not in ("in_progress", "resolved", "escalated"):
        raise typer.BadParameter("must be in_progress, resolved or escalated", param_hint="--state")
    rows = _app().list_tickets(state=state, requester=requester, limit=limit)
    if not rows:
        out.print("No tickets.")
    for t in rows:
        out.print(
            f"{t['number']}  {t['state']:11} {t['opened_at'][:19]}  {t['runbook']:20} {t.get('directory') or '-':10} "
            f"{t['requester']} → {t['subject']}"
        )


@tickets_app.command("show")
def tickets_show(number: Annotated[str, typer.Argument(help="e.g. FL-000123")]) -> None:
    """Show a ticket with its step log (secrets redacted)."""
    t = _app().ticket(number)
    out.print(f"[bold]{t['number']}[/]  {t['state']}  priority {t['priority']}  {t['category']} ({t['type']})")
    out.print(f"requester {t['requester']}, subject {t['subject']}, channel {t['channel']}")
    out.print(
        f"runbook {t['runbook']} sha256 {t['runbook_sha256'][:12]}…  params {json.dumps(t['params'])}", markup=False
    )
    out.print(f"opened {t['opened_at']}  closed {t['resolved_at'] or '-'}")
    if t["state"] == "escalated":
        out.print(f"escalated to {t['assignment_group']}: {t['message']} (reason {t['reason']})", markup=False)
    elif t["resolution_code"]:
        out.print(f"resolution {t['resolution_code']}: {t['resolution_note']}", markup=False)
    for s in t["steps"]:
        out.print(
            f"  {s['seq']}. {s['step_id']} [{s['status']}] {s['connector']}.{s['action']} on {s['target']} "
            f"in={json.dumps(s['inputs'])} out={json.dumps(s['outputs'])} {s['message'] or ''}",
            markup=False,
        )


@tickets_app.command("sweep")
def tickets_sweep() -> None:
    """Escalate tickets whose run died (still in progress past their deadline)."""
    done = _app().sweep()
    out.print(f"Escalated {len(done)} stale ticket(s){': ' + ', '.join(done) if done else '.'}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the whole hash chain and the signed checkpoints."""
    report = _app().verify_audit()
    if report.ok:
        out.print(f"ok {report.events} events")
        return
    out.print(f"BROKEN at sequence {report.first_bad_seq}: {report.problem}", markup=False)
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl (canonical) or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Only events at or after this ISO date/time (UTC).")] = None,
) -> None:
    """Write the audit events to standard output."""
    if fmt not in ("jsonl", "csv"):
        raise typer.BadParameter("must be jsonl or csv", param_hint="--format")
    if since is not None:
        from datetime import datetime

        try:
            datetime.fromisoformat(since)
        except ValueError:
            raise typer.BadParameter(
                "must be an ISO date such as 2026-11-27 or 2026-11-27T08:55", param_hint="--since"
            ) from None
    for line in _app().export_audit(fmt, since):
        sys.stdout.write(line)


def main() -> None:
    try:
        # With standalone_mode=False click returns the code of typer.Exit instead of raising it.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except RunbookError as exc:
        err.print(str(exc), markup=False)
        sys.exit(exc.exit_code)
    except FirstlineError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - click usage errors and genuine bugs both end here
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        from runner.oplog import get_logger

        get_logger().exception("cli.crashed")
        err.print(
            f"internal error ({type(exc).__name__}); details are in the log file "
            f"{os.environ.get('FIRSTLINE_LOG_FILE', 'var/log/firstline.log')}"
        )
        sys.exit(3)
