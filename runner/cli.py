"""The ``firstline`` command line.

Exit codes: 0 resolved / ok; 1 escalated / check failed; 2 usage error or refused (bad
option or value, not vetted, not allowed — one line on stderr saying what to do; also a
bare ``firstline`` or command group, which prints its help); 3 internal error (details in
the log file, never a traceback); 4 the requester must act (ticket closed as
``requester_action_needed``: correct the value and try again).

Every error line is in the reader's language (``--lang``, else FIRSTLINE_LANG, else LANG):
``runner.clitexts`` words it, with the portal's gettext catalogue.

Usage errors come from the click bundled inside typer (``typer._click``), not the
separate ``click`` distribution: ``main`` catches those. Values people type are never
echoed in an error when they could be secret (``-p``, ``--secret``, extra arguments).
"""

from __future__ import annotations

import errno
import getpass
import inspect
import io
import json
import os
import signal
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer._click import exceptions as click_exc

from runner import clitexts as tx
from runner.errors import ConfigError, FirstlineError, ParameterError, RunbookError, Text
from runner.safetext import shown
from runner.timeparse import EXAMPLES as TIME_EXAMPLES

EXIT_OK, EXIT_ESCALATED, EXIT_USAGE, EXIT_INTERNAL, EXIT_REQUESTER = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
TIME_HELP = f"no offset means UTC; e.g. {TIME_EXAMPLES}"


class Role(StrEnum):
    agent = "agent"
    employee = "employee"


class Lang(StrEnum):
    en = "en"
    nl = "nl"


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class State(StrEnum):
    queued = "queued"
    running = "running"
    resolved = "resolved"
    escalated = "escalated"
    closed = "closed"


# How --help shows what an option takes: click's words (TEXT, INTEGER) and the choices, not
# Python's type names (Typer 0.29 printed "--dry-run <bool>", "--param <list[str]>").
_VALUE_WORDS = {
    "<str>": "TEXT",
    "<int>": "INTEGER",
    "<int range>": "INTEGER",
    "<float>": "NUMBER",
    "<Path>": "PATH",
    "<bool>": None,
}
_typer_display = typer.core.TyperOption.display_type_rich
_typer_argument_display = typer.core.TyperArgument.display_type_rich


def _shown_type(self: Any, ctx: Any) -> str | None:
    if getattr(self, "is_flag", False):
        return None  # a flag takes no value
    option = isinstance(self, typer.core.TyperOption)
    given = _typer_display(self, ctx) if option else _typer_argument_display(self, ctx)
    if not given:
        return given
    repeated = given.endswith("...")
    bare = given.removesuffix("...")
    if bare.startswith("<list[") and bare.endswith("]>"):  # a repeatable option: shown by its element
        bare, repeated = f"<{bare[6:-2]}>", True
    word = _VALUE_WORDS.get(bare, bare.strip("<>") if bare.startswith("<") else bare)
    return None if word is None else word + ("..." if repeated else "")


typer.core.TyperOption.display_type_rich = _shown_type  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _shown_type  # type: ignore[method-assign]

app = typer.Typer(
    help="Firstline: vetted runbooks that fix first-level IT problems, every run a ticket. "
    "Exit codes: 0 resolved/ok, 1 escalated/check failed, 2 usage error or refused, "
    "3 internal error, 4 closed: the requester must correct something and try again.",
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
        "closed": "Not done {t}: you can fix this yourself",
        "once": "(shown once, not stored)",
        "skipped": "Not needed",
        "no_change": "nothing to change",
    },
    "nl": {
        "opened": "Ticket {t} geopend.",
        "resolved": "Opgelost {t}",
        "escalated": "{t} doorgezet naar de tweede lijn",
        "closed": "Niet uitgevoerd {t}: dit kunt u zelf oplossen",
        "once": "(eenmalig getoond, nergens opgeslagen)",
        "skipped": "Niet nodig",
        "no_change": "niets te wijzigen",
    },
}


def _default_lang() -> str:
    """FIRSTLINE_LANG (a setting: an unsupported language is refused there, exit 2), else
    Dutch when the locale (LANG) is Dutch, else English."""
    from runner.settings import get_settings

    chosen = get_settings().lang
    if chosen is not None:
        return chosen
    return "nl" if os.environ.get("LANG", "").lower().startswith("nl") else "en"


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _app() -> Any:
    from runner.api import open_app

    return open_app()


def _me() -> str:
    """The OS user at the terminal (real uid, not $USER), recorded as the acting person."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()


def _name(text: str) -> str:
    """A parameter name as typed, fit to repeat in a message (never a value)."""
    return shown(text, 40)


def _parse_params(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            # The text is not repeated: it may be a password typed in the wrong place.
            raise typer.BadParameter(Text(tx.PARAM_FORM), param_hint="--param")
        if key in values:
            raise typer.BadParameter(Text(tx.PARAM_TWICE, name=_name(key)), param_hint="--param")
        if not value:
            # `-p user=$U` with U unset must not fall back to the default (the person at the terminal).
            raise typer.BadParameter(Text(tx.PARAM_EMPTY, name=_name(key)), param_hint="--param")
        values[key] = value
    return values


MAX_SECRET_CHARS = 65_536
"""A secret read from standard input is one line of at most this many characters (64 Ki; a
password or key is far shorter): a pipe that never sends a line break is not read whole."""


def _read_secret(name: str) -> str:
    stdin = sys.stdin
    if stdin is None:  # started with standard input closed (<&-)
        raise typer.BadParameter(Text(tx.SECRET_NO_STDIN, name=name), param_hint="--secret")
    if stdin.isatty():
        typed = getpass.getpass(f"{name}: ")
        if not typed:
            raise typer.BadParameter(Text(tx.SECRET_EMPTY, name=name), param_hint="--secret")
        # a new password is typed twice at a terminal, as on the portal's form (runner.fixes):
        # a typo seen by nobody would become the password nobody knows
        from runner.fixes import NEW_PASSWORD_PARAMS  # here: the CLI's start stays light

        again = tx.say(tx.chosen_lang(sys.argv[1:]), tx.SECRET_AGAIN, name=name)
        if name in NEW_PASSWORD_PARAMS and getpass.getpass(f"{again}: ") != typed:
            raise typer.BadParameter(Text(tx.SECRET_DIFFERENT, name=name), param_hint="--secret")
        return typed
    try:
        line = stdin.readline(MAX_SECRET_CHARS + 1)  # the longest secret and its line break
    except UnicodeDecodeError:
        raise typer.BadParameter(Text(tx.SECRET_NOT_UTF8, name=name), param_hint="--secret") from None
    if not line:
        raise typer.BadParameter(Text(tx.SECRET_NO_STDIN, name=name), param_hint="--secret")
    if any("\udc80" <= ch <= "\udcff" for ch in line):  # bytes that were not UTF-8 (surrogateescape)
        raise typer.BadParameter(Text(tx.SECRET_NOT_UTF8, name=name), param_hint="--secret")
    value = line.removesuffix("\n").removesuffix("\r")  # one line break, a Windows one too
    if len(value) > MAX_SECRET_CHARS:  # no line break within the limit
        raise typer.BadParameter(
            Text(tx.SECRET_TOO_LONG, name=name, limit=str(MAX_SECRET_CHARS)), param_hint="--secret"
        )
    if not value:
        # `echo "$PW" | firstline run password-reset ... --secret new_password` with PW unset: the
        # operator asked for a given password; an empty one would mean "generate one" instead
        raise typer.BadParameter(Text(tx.SECRET_EMPTY, name=name), param_hint="--secret")
    return value


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="Runbook name, e.g. account-unlock.")],
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=VALUE",
            help="Repeatable; the runbook's parameters: firstline runbooks show NAME.",
        ),
    ] = [],  # noqa: B006
    secret: Annotated[
        list[str],
        typer.Option(
            "--secret",
            help="Name of a secret parameter to read from the "
            "terminal (or one line of stdin); never on the command line.",
        ),
    ] = [],  # noqa: B006
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Requester: whose problem this is (an account name, name@domain or DOMAIN\\name). "
            "Default: you. You are recorded as the person who acted, on their behalf.",
        ),
    ] = None,
    role: Annotated[Role, typer.Option(help="Act as an agent, or apply the employee self-service rules.")] = Role.agent,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the rendered steps; touch nothing.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome (with its state), or with --dry-run the plan, as JSON.")
    ] = False,
    lang: Annotated[
        Lang | None, typer.Option(help="Language of progress and outcome (default: FIRSTLINE_LANG / LANG).")
    ] = None,
) -> None:
    """Run a vetted runbook. Prints the ticket number and the outcome.

    Exit codes: 0 resolved; 1 escalated to second level; 2 refused or usage error;
    3 internal error (see the log file); 4 closed: the requester must correct
    something (e.g. a password that is too short) and try again.
    """
    lang_code = lang.value if lang is not None else _default_lang()
    ui = UI[lang_code]
    values: dict[str, Any] = _parse_params(param)
    fl = _app()
    rb = fl.runbook(name)
    for pname in values:
        if pname in rb.secret_params:
            raise typer.BadParameter(Text(tx.PARAM_IS_SECRET, name=_name(pname)), param_hint="--param")
    secret_names = ", ".join(sorted(rb.secret_params)) or Text(tx.NO_SECRETS)
    for sname in secret:
        if sname not in rb.secret_params:
            # Not repeated: a password typed after --secret by mistake must not reach the screen.
            raise typer.BadParameter(Text(tx.NOT_A_SECRET, runbook=name, names=secret_names), param_hint="--secret")
        if sname in values:
            raise typer.BadParameter(Text(tx.SECRET_TWICE, name=sname), param_hint="--secret")
        values[sname] = _read_secret(sname)
    for p in rb.model.parameters:
        # "parameter 'new_password' is required" did not say how a secret is given (a tester's find)
        if p.type == "secret" and p.required and p.default is None and p.name not in values and not dry_run:
            raise typer.BadParameter(Text(tx.SECRET_MISSING, name=_name(p.name)), param_hint="--secret")
    me = _me()
    # --as: recorded as the portal records that person at sign-in (runner.routing), so the
    # CLI and the portal never split one person in two; you (the OS user) as you are.
    requester = fl.inventory.directories.principal(as_user, "--as") if as_user is not None else me
    roles = {role.value}
    if dry_run:
        steps = fl.plan(name, values, requester=requester, roles=roles, actor_id=me)  # operator proof
        if as_json:  # the plan, as the text below shows it (secrets already redacted)
            plan = {
                "dry_run": True,
                "runbook": name,
                "requester": requester,
                "steps": [
                    {
                        "id": s.id,
                        "connector": s.connector,
                        "action": s.action,
                        "target": s.target,
                        "inputs": s.inputs,
                        "when": s.condition or None,
                    }
                    for s in steps
                ],
            }
            sys.stdout.write(json.dumps(plan, indent=2, default=str, ensure_ascii=False) + "\n")
            return
        out.print(f"[bold]Dry run of {name}[/] for ", end="")
        out.print(f"{shown(requester)}: nothing will be changed.", markup=False)
        for i, s in enumerate(steps, 1):
            cond = f"  (only when {s.condition})" if s.condition else ""
            out.print(
                shown(
                    f" {i}. {s.id}: {s.connector}.{s.action} on {s.target} "
                    f"with {json.dumps(s.inputs, default=str)}{cond}"
                ),
                markup=False,
            )
        return

    from runner.texts import localize  # Firstline's own messages in the chosen language; others as they came

    def progress(kind: str, data: Any) -> None:
        if as_json:
            return
        if kind == "ticket.opened":
            out.print(ui["opened"].format(t=f"[bold]{data['ticket']}[/]"))
        elif kind == "step.finished":
            mark = {"ok": "[green]✓[/]", "skipped": "[dim]–[/]", "failed": "[red]✗[/]"}[data["status"]]
            message = ui["skipped"] if data["status"] == "skipped" else localize(data["message"], lang_code)
            note = "" if data["status"] == "ok" else f": {message}"
            if data["status"] == "ok" and data.get("changed") is False:
                note = f": {ui['no_change']}"
            out.print(f"  {mark} ", end="")
            out.print(shown(f"{data['title'][lang_code]}{note}"), markup=False)

    from runner.runs import PROOF_OPERATOR

    # SIGTERM as Ctrl-C: a step in flight is stopped (remote work included) and the ticket is
    # escalated `interrupted` before the exit (130), instead of left running for the sweep.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        outcome = fl.run(
            name,
            values,
            requester=requester,
            roles=roles,
            channel="cli",
            actor_id=me,  # the person at the terminal acts, on the requester's behalf
            progress=progress,
            proof=PROOF_OPERATOR,  # an operator's tool: the self-service reset rule does not apply
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        out.print_json(
            data={
                "ticket": outcome.ticket_number,
                "state": outcome.state,
                "reason": outcome.reason,
                "message": outcome.message,
                "guidance": outcome.guidance(lang_code),
            }
        )
    elif outcome.ok:
        out.print("[green]" + ui["resolved"].format(t=f"[/]{outcome.ticket_number}") + ":", end=" ")
        out.print(shown(localize(outcome.message, lang_code) or ""), markup=False)
    elif outcome.requester_action_needed:
        out.print("[yellow]" + ui["closed"].format(t=f"[/]{outcome.ticket_number}[yellow]") + "[/]:", end=" ")
        out.print(shown(localize(outcome.message, lang_code) or ""), markup=False)
        out.print(outcome.guidance(lang_code) or "", markup=False)
    else:
        out.print("[yellow]" + ui["escalated"].format(t=f"[/]{outcome.ticket_number}[yellow]") + "[/]:", end=" ")
        out.print(shown(localize(outcome.message, lang_code) or ""), markup=False)
    for key, value in outcome.secrets.items():
        # Delivered once, to the person who ran it; never stored.
        err.print(f"[bold]{key.split('.')[-1].replace('_', ' ')}[/] {ui['once']}: ", end="")
        err.print(value, markup=False)
    if outcome.reason == "interrupted":  # stopped by Ctrl-C / SIGTERM: the ticket says so, as above
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if outcome.ok else EXIT_REQUESTER if outcome.requester_action_needed else EXIT_ESCALATED)


def _url_host(host: str) -> str:
    """*host* as a URL writes it: an IPv6 address in brackets (``http://[::1]:8000/``, RFC 3986)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@runbooks_app.command("check")
def runbooks_check() -> None:
    """Lint every runbook and check each is vetted; prints file:line: problem."""
    lang = _default_lang()
    problems = _app().check_runbooks()
    for p in problems:
        out.print(shown(tx.runbook_problem(p, lang)), markup=False)
    if problems:
        err.print(tx.say(lang, tx.LINT_PROBLEMS, count=len(problems)), markup=False)
        raise typer.Exit(1)
    out.print(tx.say(lang, tx.LINT_OK), markup=False)


@runbooks_app.command("list")
def runbooks_list() -> None:
    """List runbooks with their vetting state."""
    entries, problems = _app().catalogue.entries()
    words = {"vetted": "vetted", "changed": "CHANGED since vetting", "not_vetted": "not vetted"}
    for e in entries:
        out.print(shown(f"{e.name:24} {words[e.state]:22} {e.runbook.model.title.en}"), markup=False)
    for p in problems:
        out.print(shown(p), markup=False)
    if not entries and not problems:
        where = _app().settings.runbooks_dir
        if not where.is_dir():
            raise ConfigError(f"{where} (FIRSTLINE_RUNBOOKS_DIR) is not a directory")
        out.print(shown(f"No runbooks in {where} (FIRSTLINE_RUNBOOKS_DIR): add NAME.yaml files there."), markup=False)


@runbooks_app.command("show")
def runbooks_show(
    name: Annotated[str, typer.Argument(help="Runbook name, e.g. account-unlock (see `firstline runbooks list`).")],
) -> None:
    """What a runbook does and the parameters `firstline run` takes for it (-p name=value;
    a secret with --secret name), with its steps and whether it is vetted."""
    fl = _app()
    from runner.vetting import read_lock

    rb = fl.catalogue.runbook(name)  # NotFoundError lists the available names
    model = rb.model
    approval = read_lock(fl.catalogue.directory).get(rb.name)  # as `runbooks list` judges it
    state = "not vetted" if approval is None else "vetted" if approval.sha256 == rb.sha256 else "CHANGED since vetting"
    out.print(shown(f"{rb.name}: {model.title.en} ({state})"), markup=False)
    if model.description is not None:
        out.print(shown(f"  {model.description.en}"), markup=False)
    out.print("Parameters:" if model.parameters else "Parameters: none.", markup=False)
    for p in model.parameters:
        how = f"--secret {p.name}" if p.type == "secret" else f"-p {p.name}=..."
        if p.default == "{{ requester }}":
            need = "default: the requester (--as, else you)"
        elif p.type == "directory":
            need = "default: the one the account's domain names, else the default directory"
        elif p.default is not None:
            need = f"default: {p.default}"
        else:
            need = "required" if p.required else "optional"
        kind = p.type
        if p.type == "choice" and p.source is not None:
            keys = sorted(fl.inventory.choices.get(p.source, {}))
            kind = f"one of: {', '.join(keys)}" if keys else f"a key of the inventory's {p.source}"
        elif p.values:
            kind = f"one of: {', '.join(p.values)}"
        label = p.label.en if p.label is not None else ""
        out.print(shown(f"  {how:24} {kind}; {need}" + (f". {label}" if label else "")), markup=False)
    steps = [*rb.steps, *([rb.verify] if rb.verify is not None else [])]
    out.print(shown("Steps: " + ", ".join(f"{s.id} ({s.spec.connector}.{s.spec.action})" for s in steps)), markup=False)


@runbooks_app.command("vet")
def runbooks_vet(
    name: Annotated[str, typer.Argument(help="Runbook to approve as it is now.")],
    by: Annotated[str, typer.Option("--by", help="Who reviewed and approves it (plain text, up to 128 characters).")],
) -> None:
    """Record approval of the runbook's current content (SHA-256) in runbooks/vetted.lock; audited
    with you (the OS user) as the person who recorded it."""
    sha = _app().vet(name, by, actor_id=_me())
    out.print(shown(f"Vetted {name} ({sha[:12]}…) by {by.strip()}."), markup=False)


@tickets_app.command("list")
def tickets_list(
    state: Annotated[
        State | None, typer.Option(help="Only tickets in this state (closed: the requester must act).")
    ] = None,
    requester: Annotated[
        str | None,
        typer.Option(
            help="Only this requester's tickets: name, name@domain or DOMAIN\\name, any case; "
            "a bare name finds the person in every directory."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help=f"Only tickets opened at or after this time ({TIME_HELP}).")] = None,
    until: Annotated[str | None, typer.Option(help=f"Only tickets opened before this time ({TIME_HELP}).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """List the newest tickets (stored text is shown with control and direction characters escaped)."""
    lower, upper = _time_window(since, until)
    if requester is not None and not requester.strip():  # was taken as "no filter": every ticket listed
        raise ParameterError("--requester is empty: give an account name, or leave the option out")
    fl = _app()
    rows = fl.list_tickets(
        state=state.value if state is not None else None,
        requester=fl.inventory.directories.search_forms(requester) if requester is not None else None,
        limit=limit,
        since=lower,
        until=upper,
    )
    if not rows:
        out.print("No tickets.")
    for t in rows:
        out.print(
            shown(
                f"{t['number']}  {t['state']:11} {t['opened_at'][:19]}  {t['runbook']:20} "
                f"{t.get('directory') or '-':10} {t['requester']} → {t['subject']}"
            ),
            markup=False,
        )


@tickets_app.command("show")
def tickets_show(number: Annotated[str, typer.Argument(help="e.g. FL-000123")]) -> None:
    """Show a ticket with its step log (secrets redacted)."""
    t = _app().ticket(number)

    def line(text: str) -> None:
        out.print(shown(text), markup=False)  # stored text: no markup, controls and bidi escaped

    line(f"{t['number']}  {t['state']}  priority {t['priority']}  {t['category']} ({t['type']})")
    line(
        f"requester {t['requester']}, opened by {t.get('opened_by') or '-'}, subject {t['subject']}, "
        f"channel {t['channel']}"
    )
    line(f"runbook {t['runbook']} sha256 {t['runbook_sha256'][:12]}…  params {json.dumps(t['params'])}")
    # resolved: the time of resolution (resolved tickets only); ended (``closed_at``): when it
    # reached its final state, any final state — not "closed", which is a state of its own here
    # (the requester must act) and read so on an escalated ticket
    resolved = f"  resolved {t['resolved_at']}" if t.get("resolved_at") else ""
    line(f"opened {t['opened_at']}{resolved}  ended {t.get('closed_at') or '-'}")
    if t["state"] == "escalated":
        line(f"escalated to {t['assignment_group']}: {t['message']} (reason {t['reason']})")
    elif t["state"] == "closed":
        line(f"closed, {t['resolution_code']}: {t['message']} (reason {t['reason']}). {t['resolution_note'] or ''}")
    elif t["resolution_code"]:
        line(f"resolution {t['resolution_code']}: {t['resolution_note']}")
    for s in t["steps"]:
        line(
            f"  {s['seq']}. {s['step_id']} [{s['status']}] {s['connector']}.{s['action']} on {s['target'] or '-'} "
            f"in={json.dumps(s['inputs'])} out={json.dumps(s['outputs'])} {s['message'] or ''}"
        )


@tickets_app.command("sweep")
def tickets_sweep() -> None:
    """Escalate queued tickets never started and running tickets whose run died, past their
    deadline (reasons never_started / run_lost); recorded as done by you."""
    done = _app().sweep(actor_id=_me())
    out.print(f"Escalated {len(done)} stale ticket(s){': ' + ', '.join(done) if done else '.'}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the whole hash chain and the signed checkpoints.

    Prints "ok N events" and exits 0,
    or "BROKEN at sequence N: problem" (or "BROKEN: problem" when no one event is to blame:
    a checkpoint file that was altered, a ticket whose events were removed) and exits 1.
    """
    report = _app().verify_audit()
    if report.ok:
        out.print(f"ok {report.events} events")
        return
    where = f" at sequence {report.first_bad_seq}" if report.first_bad_seq is not None else ""
    out.print(f"BROKEN{where}: {report.problem}", markup=False)
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    fmt: Annotated[Format, typer.Option("--format", help="jsonl (canonical, as stored) or csv.")] = Format.jsonl,
    since: Annotated[str | None, typer.Option(help=f"Only events at or after this time ({TIME_HELP}).")] = None,
    until: Annotated[str | None, typer.Option(help=f"Only events before this time ({TIME_HELP}).")] = None,
) -> None:
    """Write the audit events to standard output (times compared as instants, in UTC)."""
    lower, upper = _time_window(since, until)
    for line in _app().export_audit(fmt.value, lower, upper):
        sys.stdout.write(line)


def _time_option(value: str | None, option: str) -> datetime | None:
    """Parse a time option (``runner.timeparse``); a usage error (exit 2) when it is not a time."""
    if value is None:
        return None
    from runner.timeparse import TimeParseError, parse_instant

    try:
        return parse_instant(value, what=option)
    except TimeParseError as exc:
        raise typer.BadParameter(_Trimmed(exc, option), param_hint=option) from None


class _Trimmed(str):
    """A refusal of ``runner.timeparse`` without the option's name in front (click puts it
    back), in English as ``str`` and in the reader's language as ``translated``."""

    error: FirstlineError
    prefix: str

    def __new__(cls, error: FirstlineError, prefix: str) -> _Trimmed:
        obj = super().__new__(cls, str(error).removeprefix(prefix).strip())
        obj.error, obj.prefix = error, prefix
        return obj

    def translated(self, gettext: tx.Gettext) -> str:
        return self.error.translated(gettext).removeprefix(self.prefix).strip()


def _time_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` / ``--until`` parsed; a usage error when the window is empty (``--until``
    not later than ``--since``), as the portal's filters refuse it (``runner.queries``)."""
    lower, upper = _time_option(since, "--since"), _time_option(until, "--until")
    if lower is not None and upper is not None and upper <= lower:
        raise typer.BadParameter(Text(tx.UNTIL_BEFORE_SINCE), param_hint="--until")
    return lower, upper


def usage_line(exc: click_exc.ClickException, lang: str = "en") -> str:
    """One line for a usage error in *lang*: what was wrong and where to look, never a typed
    value that could be secret (extra arguments and rejected choices are not repeated).

    Click's own messages ("Missing argument", "No such command", "Invalid value for") are
    translated as patterns (``runner.clitexts.PATTERNS``); one it words otherwise stays English."""
    ctx = getattr(exc, "ctx", None)
    where = shown(ctx.command_path, 60) if ctx is not None else "firstline"
    if isinstance(exc, click_exc.NoSuchOption):
        what = tx.say(lang, tx.NO_SUCH_OPTION, option=shown(exc.option_name, 40))
        if exc.possibilities:
            options = ", ".join(sorted(shown(p, 40) for p in exc.possibilities))
            what = tx.say(lang, tx.DID_YOU_MEAN, what=what, options=options)
    elif isinstance(exc, click_exc.BadParameter) and _choices(exc.param):
        hint = shown(_hint(exc), 60)
        what = tx.say(lang, tx.ONE_OF, label=hint, values=", ".join(_choices(exc.param)))
    elif exc.message.startswith("Got unexpected extra argument"):
        what = tx.say(lang, tx.EXTRA_ARGUMENTS)
    elif isinstance(exc, click_exc.BadParameter) and hasattr(exc.message, "translated"):  # ours: a Text
        hint = exc.param_hint if isinstance(exc.param_hint, str) else _hint(exc)
        what = shown(tx.say(lang, tx.INVALID_VALUE, hint=hint, message=tx.translate(exc.message, lang)), 300)
    else:
        what = shown(tx.translate(exc.format_message(), lang), 300)
    what = what.removeprefix("Error: ").rstrip(".")
    return tx.say(lang, tx.ERROR, message=tx.say(lang, tx.TRY_HELP, what=f"{what[:1].lower()}{what[1:]}", where=where))


def _hint(exc: click_exc.BadParameter) -> str:
    return exc.param.get_error_hint() if exc.param is not None else "the value"


def _choices(param: Any) -> list[str]:
    desc = getattr(param, "type_descriptor", None)
    if desc is None or not desc.is_choice or not desc.choices:
        return []
    return [str(getattr(c, "value", c)) for c in desc.choices]


def _log_crash() -> Path | None:
    """Record a crash in the log file (configured here if the app never opened); never on screen.

    Returns the file it was written to (from the settings: ``FIRSTLINE_LOG_FILE``, else
    ``<data dir>/log/firstline.log``), or None when no log file is configured or usable."""
    try:
        from runner.oplog import configure, get_logger
        from runner.settings import get_settings

        log_file = get_settings().log_file
        configure(log_file)
        get_logger().exception("cli.crashed")
        return log_file if log_file is not None and log_file.is_file() else None
    except Exception:  # noqa: BLE001 - no log file is usable: the one-line message still says what happened
        return None


# -- inventory check (issue 7 item 22; helper E) -----------------------------------------
inventory_app = typer.Typer(
    help="Check the inventory: valid settings, and (--connect) working targets.", no_args_is_help=True
)
app.add_typer(inventory_app, name="inventory")


@inventory_app.command("check")
def inventory_check(
    connect: Annotated[
        bool, typer.Option("--connect", help="Also connect, verify TLS / host key and sign in to each target.")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, max=120, help="Seconds per target with --connect.")] = 10.0,
) -> None:
    """Validate every target and reference of FIRSTLINE_INVENTORY, naming the exact field.

    Exit 0 all valid (and every target works), 1 some target failed, 2 invalid inventory.
    """
    from connectors.registry import registry
    from runner.inventory_check import check_inventory
    from runner.oplog import configure
    from runner.settings import get_settings

    settings = get_settings()
    configure(settings.log_file)
    lang = _default_lang()
    report = check_inventory(settings.inventory, registry(), connect=connect, timeout=timeout)
    if report.problems:
        for problem in report.problems:
            err.print(f"{settings.inventory}: {tx.translate(problem, lang)}", markup=False)
        said = tx.say(lang, tx.INVENTORY_PROBLEMS, file=str(settings.inventory), count=len(report.problems))
        err.print(said, markup=False)
        raise typer.Exit(2)
    out.print(tx.say(lang, tx.INVENTORY_VALID, file=str(settings.inventory), count=len(report.targets)), markup=False)
    for r in report.results:
        state = tx.say(lang, {True: tx.TARGET_OK, False: tx.TARGET_FAILED, None: tx.TARGET_NOT_CHECKED}[r.ok])
        reason = f" [{r.reason}]" if r.ok is False and r.reason else ""
        out.print(f"  {r.target} ({r.connector}): {state}{reason} — {tx.translate(r.message, lang)}", markup=False)
    raise typer.Exit(report.exit_code)


# -- db: schema migrations (issue 8, the run seam) ---------------------------------------
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database (FIRSTLINE_DATABASE_URL) to the newest schema revision (Alembic).

    The embedded default (SQLite; environments dev and test) migrates itself when opened; a
    production PostgreSQL is migrated only by this command, once per release, before the
    portal and workers start. Exit 0 when current (also when it already was), 2 when the
    database cannot be used."""
    from runner.ledger.store import HEAD_REVISION, make_engine, upgrade
    from runner.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url, settings)  # a URL it cannot use: ConfigError, nothing created
    if settings.sqlite_path is not None:
        from runner.api import path_problem
        from runner.errors import ConfigError
        from runner.settings import private_file

        try:
            private_file(settings.sqlite_path)
        except OSError as exc:  # as open_app: the setting to fix, the path and the reason (was exit 3)
            engine.dispose()
            raise ConfigError(path_problem(settings, exc)) from exc
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    out.print(f"Database schema is at revision {HEAD_REVISION}.", markup=False)


# -- serve: the portal (issue 8; helper H1; issue 9: --workers) ---------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless behind a proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Portal processes sharing the port (sessions, throttles, progress and once-only "
            "values live in the database, so any process can answer).",
        ),
    ] = 1,
) -> None:
    """Run the portal (docs/portal.md): web pages, the /api/v1 JSON API, /healthz, /metrics.

    Opens the database (migrating it on the embedded default) and, with FIRSTLINE_BROKER_URL,
    checks the broker once; then serves until interrupted. Exit 2 with one line for bad
    settings, a database or a broker that cannot be used (docs/deployment.md).
    """
    import uvicorn

    from runner.settings import get_settings

    settings = get_settings()
    if settings.broker_url is not None:
        from runner.celery_app import check_broker

        check_broker(settings.broker_url)  # ConfigError → exit 2, before listening
    if workers > 1 and settings.run_keys() is None:
        from runner.errors import ConfigError

        raise ConfigError(tx.SERVE_NO_RUN_KEY)
    _can_listen(host, port)  # before "Firstline portal on ..." is said (was uvicorn's ERROR line, exit 3)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        # X-Forwarded-For / -Proto are believed only from FIRSTLINE_TRUSTED_PROXIES, by the
        # portal's SecurityMiddleware; uvicorn's own handling would believe 127.0.0.1 always
        "proxy_headers": False,
    }
    if workers == 1:
        from portal.app import create_app

        application = create_app(settings)  # ConfigError → exit 2 before listening
        _check_run_key(application.state.portal.firstline)
        out.print(f"Firstline portal on http://{_url_host(host)}:{port}/ (stop with Ctrl-C)", markup=False)
        uvicorn.run(application, **options)
        return
    from runner.api import open_app

    checked = open_app(settings)  # database, schema and keys checked (and migrated) once, before the processes
    try:
        _check_run_key(checked)
    finally:
        checked.close()
    out.print(
        f"Firstline portal on http://{_url_host(host)}:{port}/, {workers} processes (stop with Ctrl-C)", markup=False
    )
    uvicorn.run("portal.app:create_app", factory=True, workers=workers, **options)


def _can_listen(host: str, port: int) -> None:
    """``ConfigError`` (exit 2, one line) when *host*:*port* cannot be listened on: a port in
    use, an address this machine does not have. Bound and released at once, with
    SO_REUSEADDR as uvicorn binds, so a port in TIME_WAIT still counts as free."""
    import socket

    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {shown(host, 100)} is not an address to listen on ({exc})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {shown(host, 100)}:{port}: {exc.strerror or exc} "
                "(another program on that port? choose another with --port)"
            ) from None


# -- worker: Celery (issue 9) ---------------------------------------------------------------
class PoolKind(StrEnum):
    prefork = "prefork"
    threads = "threads"


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Runs at once (default FIRSTLINE_WORKER_CONCURRENCY, else 4)."),
    ] = None,
    queues: Annotated[
        str,
        typer.Option(
            help="Queues to take runs from, most urgent first: interactive, batch (comma-separated). "
            "'interactive' alone gives people-facing runs workers of their own."
        ),
    ] = "interactive,batch",
    pool: Annotated[
        PoolKind, typer.Option(help="prefork: one process per run slot; threads: one process, lighter.")
    ] = PoolKind.prefork,
    name: Annotated[str | None, typer.Option(help="Worker name (default firstline-<pid>@<host>).")] = None,
    new_run_key: Annotated[
        bool, typer.Option("--new-run-key", help="Print a new FIRSTLINE_RUN_KEY value and exit (nothing else).")
    ] = False,
) -> None:
    """Run queued runs from the Celery broker (FIRSTLINE_BROKER_URL) until stopped.

    SIGTERM (or Ctrl-C) is a warm shutdown: no new runs are taken and the runs in progress
    finish first; runs not yet started stay in the broker for another worker. Exit 2 with
    one line when FIRSTLINE_BROKER_URL is unset, malformed or unreachable, or the database
    cannot be used (checked once at start, a few seconds at most).
    """
    if new_run_key:
        from cryptography.fernet import Fernet

        out.print(Fernet.generate_key().decode("ascii"), markup=False)
        return
    import socket

    from runner.celery_app import QUEUE_NAMES, broker_place, check_broker, make_celery
    from runner.errors import ConfigError
    from runner.oplog import get_logger
    from runner.settings import get_settings

    settings = get_settings()
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in QUEUE_NAMES]
    if not wanted or unknown or len(set(wanted)) != len(wanted):
        raise typer.BadParameter(Text(tx.QUEUES), param_hint="--queues")
    url = settings.broker_url
    if url is None:
        raise ConfigError(tx.WORKER_NO_BROKER)
    check_broker(url)  # ConfigError → exit 2: malformed, unreachable, login refused
    fl = _app()  # database, schema, audit key; ConfigError / LedgerError → exit 2
    try:
        has_key = fl.runs.run_key is not None
        _check_run_key(fl)  # the key the portals seal with, or ConfigError → exit 2
    finally:
        fl.close()
        fl.engine.dispose()  # pool processes open their own connections after the fork
    log = get_logger()
    if not has_key:
        err.print(
            "warning: FIRSTLINE_RUN_KEY is not set: runs with secret values will be escalated (secrets_unavailable).",
            markup=False,
        )
        log.warning("worker.no_run_key")
    import logging

    logging.captureWarnings(True)  # Celery's warnings (e.g. running as root) go to the log file, masked
    slots = concurrency or settings.worker_concurrency
    names = [QUEUE_NAMES[q] for q in wanted]
    celery = make_celery(url)

    from celery import signals

    # The worker's main process also sweeps (runner.runs.sweep, every FIRSTLINE_SWEEP_INTERVAL
    # or run lease): runs whose worker died are found by their expired lease and re-queued
    # to the broker or escalated, and nothing stays queued or running past its deadline even
    # with no portal running. Several workers sweeping is safe (each change is conditional).
    sweeping: dict[str, Any] = {}

    def start_sweeping() -> None:
        from runner.celery_app import dispatcher_for

        swept = _app()
        swept.runs.dispatcher = dispatcher_for(celery, swept.engine, settings.batch_runbooks)
        sweeping["app"], sweeping["sweeper"] = swept, swept.runs.start_sweeper(settings.sweep_interval)

    lang = _default_lang()

    def ready(**_: Any) -> None:
        start_sweeping()
        log.info("worker.ready", queues=names, concurrency=slots, pool=pool.value, broker=broker_place(url))
        line = tx.say(
            lang, tx.WORKER_READY, queues=", ".join(wanted), slots=slots, pool=pool.value, broker=broker_place(url)
        )
        err.print(line, markup=False)

    def stopping(**_: Any) -> None:
        sweeper, swept = sweeping.pop("sweeper", None), sweeping.pop("app", None)
        if sweeper is not None:
            sweeper.stop()
        if swept is not None:
            swept.close()
        log.info("worker.stopping")
        err.print(tx.say(lang, tx.WORKER_STOPPING), markup=False)

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutting_down.connect(stopping, weak=False)
    node = celery.Worker(
        hostname=name or f"firstline-{os.getpid()}@{socket.gethostname()}",
        concurrency=slots,
        queues=names,
        pool_cls=pool.value,
        optimization="fair",
        loglevel="INFO",
        quiet=True,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    node.start()
    raise typer.Exit(int(node.exitcode or 0))


def _missing_command(args: list[str]) -> Text | None:
    """One usage line for a bare ``firstline`` or a bare group (``firstline tickets``), else None.

    Issue 7 item 15: a usage mistake is exit 2 with one line that says what to do, not a page of help.
    """
    import typer.main

    if not isinstance(app, typer.Typer):  # replaced in tests
        return None
    group: Any = typer.main.get_command(app)
    words = ["firstline"]
    for arg in args:
        sub = group.commands.get(arg) if hasattr(group, "commands") else None
        if sub is None or not hasattr(sub, "commands"):
            return None
        group, words = sub, [*words, arg]
    if not hasattr(group, "commands"):
        return None
    return Text(tx.MISSING_COMMAND, command=" ".join(words), commands=", ".join(sorted(group.commands)))


def _reflow(doc: str) -> str:
    """*doc* with each paragraph on one line: Typer's rich help keeps a docstring's single
    line breaks, so a paragraph wrapped at 100 columns in the source broke mid-sentence on an
    80-column terminal ("the runs in progress" / "finish first"); the terminal wraps it now."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _reflow_help(group: typer.Typer) -> None:
    """Every command's help text (its docstring unless given) reflowed, in *group* and its subgroups."""
    for info in group.registered_commands:
        doc = info.help or (info.callback.__doc__ if info.callback is not None else None)
        if doc:
            info.help = _reflow(doc)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _reflow_help(sub.typer_instance)


_reflow_help(app)


def _check_run_key(fl: Any) -> None:
    """``runner.sealed.check_key`` for *fl*'s run key, when it has one: a portal or worker whose
    key is not the one the other processes of this database use exits 2 before it serves or
    takes a run (it would have escalated every run with a secret value, saying nothing)."""
    key = fl.runs.run_key
    if key is not None:
        from runner import sealed

        sealed.check_key(fl.engine, key)


def _not_text(args: list[str]) -> int | None:
    """The position (1-based) of the first argument that is not UTF-8 text, else None.

    Python hands bytes that are no UTF-8 in to ``sys.argv`` as lone surrogates
    (``surrogateescape``, PEP 383): passed on they crashed deep inside a command (a ticket
    search, the audit record of a refusal) with UnicodeEncodeError, exit 3. Refused here for
    every command at once, with exit 2, before anything is read or written."""
    for position, arg in enumerate(args, 1):
        if any("\ud800" <= ch <= "\udfff" for ch in arg):
            return position
    return None


def main() -> None:
    """Console entry point; every outcome ends in ``sys.exit`` with a documented exit code."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # a terminal or pipe that cannot encode ✓ (LANG=C, PYTHONIOENCODING=ascii) gets "?",
            # never an UnicodeEncodeError in the middle of a run
            stream.reconfigure(errors="replace")
    lang = tx.chosen_lang(sys.argv[1:])  # of the error lines; never raises (--lang, FIRSTLINE_LANG, LANG)
    missing = _missing_command(sys.argv[1:])
    if missing is not None:
        err.print(tx.translate(missing, lang), markup=False)
        sys.exit(EXIT_USAGE)
    as_json = _wants_json(sys.argv[1:])

    def fail(line: str, code: str, exit_code: int, message: str | None = None) -> NoReturn:
        """*line* on stderr; with ``run --json`` also ``{"error": {...}}`` on stdout (a script
        reading stdout got nothing at all on a refusal); then exit *exit_code*."""
        err.print(line, markup=False)
        if as_json:
            _json_error(code, message if message is not None else line, exit_code)
        sys.exit(exit_code)

    position = _not_text(sys.argv[1:])
    if position is not None:
        raw = sys.argv[position].encode("utf-8", "surrogateescape")
        shown_raw = repr(raw[:60])[2:-1] + ("..." if len(raw) > 60 else "")
        line = tx.say(lang, tx.ARG_NOT_TEXT, position=position, shown=shown_raw)
        fail(line, "usage", EXIT_USAGE, _without_prefix(line))
    try:
        # With standalone_mode=False click returns the code of typer.Exit instead of raising it.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except click_exc.NoArgsIsHelpError:
        sys.exit(EXIT_USAGE)  # bare `firstline` / `firstline tickets`: the help is already printed (stdout)
    except click_exc.ClickException as exc:
        line = usage_line(exc, lang)
        fail(line, "usage", EXIT_USAGE, _without_prefix(line))
    except (typer.Abort, KeyboardInterrupt, EOFError):
        fail(tx.say(lang, tx.ABORTED), "aborted", EXIT_INTERRUPTED)
    except RunbookError as exc:
        problems = [tx.runbook_problem(p, lang) for p in exc.problems]
        fail("\n".join(problems), exc.reason_code, exc.exit_code, " ".join(problems))
    except FirstlineError as exc:  # the one place domain errors become exit codes, in the reader's language
        message = shown(tx.translate(exc, lang), 500)
        fail(tx.say(lang, tx.ERROR, message=message), exc.reason_code, exc.exit_code, message)
    except Exception as exc:  # noqa: BLE001 - genuine bugs end here, logged, never a traceback on screen
        if isinstance(exc, OSError) and exc.filename is None and exc.errno in (errno.ENOSPC, errno.EIO, errno.EBADF):
            # writing our own output failed (`> /dev/full`, a closed descriptor): no bug to log
            err.print(tx.say(lang, tx.OUTPUT_FAILED, reason=exc.strerror or type(exc).__name__), markup=False)
            sys.exit(EXIT_INTERNAL)
        logged = _log_crash()
        kind = type(exc).__name__
        line = (
            tx.say(lang, tx.CRASHED_LOGGED, kind=kind, file=shown(logged, 300))
            if logged is not None
            else tx.say(lang, tx.CRASHED_UNLOGGED, kind=kind)
        )
        fail(line, "internal_error", EXIT_INTERNAL)


def _wants_json(args: list[str]) -> bool:
    """Whether the command line is ``firstline run ... --json`` (the one command with ``--json``):
    a ``--json`` token after ``run`` and before a ``--`` that ends the options."""
    options = args[: args.index("--")] if "--" in args else args
    return "run" in options and "--json" in options[options.index("run") + 1 :]


def _without_prefix(line: str) -> str:
    """A usage line without its leading ``error: `` / ``fout: `` (the JSON error has its own field)."""
    head, sep, rest = line.partition(": ")
    return rest if sep and head in ("error", "fout") else line


def _json_error(code: str, message: str, exit_code: int) -> None:
    """``{"error": {"code", "message", "exit_code"}}`` on stdout, as the API answers an error;
    an unwritable stdout is ignored (stderr has said it already)."""
    body = {"error": {"code": code, "message": message, "exit_code": exit_code}}
    try:
        sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
