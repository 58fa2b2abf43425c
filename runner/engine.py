"""The step loop: pure, no database, no web. It takes a connector pool and a recorder.

Each step renders its inputs (sandboxed), calls one connector action, and hands the
outcome (secrets redacted) to the recorder before the next step starts. Connector
errors, template errors and bugs all end the run as a failure with a reason; nothing
escapes as an exception. A ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM as the CLI turns it)
ends the step it arrives in as failed ``interrupted`` — during the action (the connector
stops its remote work first), while waiting to retry, or while the step is prepared or
recorded — and with it the run, so its ticket is closed rather than left running.

State-changing steps record whether they changed anything: the action's ``changed``
output (``connectors.base`` contract); an action that does not report it counts as
``changed=True`` (``changed_reported=False``), never as "nothing happened".

A failure the requester can fix (``ConnectorError.requester_action``, or an
``InvalidInput`` about a value the requester typed) makes ``RunResult.requester_action``
true — unless an earlier step already changed the target, in which case a person must
look (escalation). Messages shown to people never carry configuration detail or server
paths: configuration and template problems get a generic text, the detail goes to the
operator log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from jinja2 import TemplateError

from connectors.base import Connector, ConnectorError, Interrupted, InvalidInput, Timeout
from runner.errors import FirstlineError
from runner.ledger.audit import now
from runner.oplog import get_logger
from runner.redaction import REDACTED, Scrubber
from runner.runbook import CompiledStep, Runbook
from runner.templating import iter_templates, render_value, truthy
from runner.watchdog import Watchdog


class ConnectorPool(Protocol):
    def using(self, connector: str, target: str) -> AbstractContextManager[Connector]: ...
    def default_target(self, connector: str) -> str: ...


@dataclass
class StepRecord:
    """What the ledger stores for one step (already redacted)."""

    step_id: str
    connector: str
    action: str
    target: str | None
    status: str  # ok | failed | skipped
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    reason: str | None
    message: str
    attempts: int
    started_at: str
    finished_at: str
    changes_state: bool = False
    raw_outputs: dict[str, Any] = field(default_factory=dict, repr=False)  # never stored
    changed: bool | None = None  # state-changing steps that succeeded: did the target change?
    changed_reported: bool = False  # False: the action did not say, so ``changed`` is assumed True
    requester_action: bool = False  # the failure is one the requester can fix themself
    # a failed step whose action was tried: "failure" (the connector says nothing was
    # applied) or "unknown" (it may have been); None when the target was never acted on
    attempt_outcome: str | None = None
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM: the run ends after this step (never stored)

    def row(self) -> dict[str, Any]:
        from runner.ledger.tickets import dumps

        return {
            "step_id": self.step_id,
            "connector": self.connector,
            "action": self.action,
            "target": self.target,
            "status": self.status,
            "inputs": dumps(self.inputs),
            "outputs": dumps(self.outputs),
            "reason": self.reason,
            "message": self.message,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class Recorder(Protocol):
    """Where a run's progress goes. ``step_started``: *target* None for a skipped step;
    *io* False when the step will not ask its target (served by ``Prefetched``)."""

    def step_started(self, step: CompiledStep, target: str | None, *, io: bool = True) -> None: ...
    def step_finished(self, record: StepRecord) -> None: ...


CONFIG_MESSAGE = "Firstline is not configured correctly for this; the service desk has been told."
TEMPLATE_MESSAGE = "The runbook could not prepare this step; the service desk has been told."
NO_CHANGE_MESSAGE = "Nothing to change: it was already as it should be."


@dataclass
class RunResult:
    ok: bool
    reason: str | None = None
    message: str = ""
    requester_action: bool = False  # failed, and only the requester can fix it (try again)
    failed_step: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


PREFETCH_MAX_AGE = 5.0  # seconds a read made for a request may stand in for its run's identical read
NOTHING_RAN_MESSAGE = (
    "No step of this runbook applied to the request, so nothing was checked or fixed; "
    "the inventory's choice may name a kind no step handles."
)
INTERRUPTED_MESSAGE = "The run was interrupted; check the target."
INTERRUPTED_WAITING_MESSAGE = "The run was interrupted while it waited to try this step again; nothing more was done."
PREFETCHED_MESSAGE = "Done (read moments before by the look-up that started this request)."


@dataclass(frozen=True)
class Read:
    """A read-only connector call made for a request just before its run was submitted
    (the agent desk's account look-up): what was asked, what came back, and when
    (``time.monotonic()``)."""

    connector: str
    target: str
    action: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    at: float


def reads_to_wire(reads: Iterable[Read]) -> dict[str, Any]:
    """*reads* as JSON-able values for another process (sealed by ``runner.sealed``): each
    read's age becomes a wall-clock moment (``time.time()`` seconds), since monotonic clocks
    of two processes or machines do not compare. ``{"reads": [...]}``."""
    mono, wall = time.monotonic(), time.time()
    return {
        "reads": [
            {
                "connector": r.connector,
                "target": r.target,
                "action": r.action,
                "inputs": dict(r.inputs),
                "outputs": dict(r.outputs),
                "at": wall - (mono - r.at),
            }
            for r in reads
        ]
    }


def reads_from_wire(values: Mapping[str, Any], *, max_skew: float = 1.0) -> list[Read]:
    """The reads of ``reads_to_wire`` with their moments on this process's monotonic clock.

    A read dated more than *max_skew* seconds in the future (clocks of two machines apart)
    or malformed is dropped: the run then asks its target, as it would without it."""
    mono, wall = time.monotonic(), time.time()
    found: list[Read] = []
    items = values.get("reads")
    for item in items if isinstance(items, list) else []:
        try:
            age = wall - float(item["at"])
            if age < -max_skew or not isinstance(item["inputs"], dict) or not isinstance(item["outputs"], dict):
                continue
            found.append(
                Read(
                    str(item["connector"]),
                    str(item["target"]),
                    str(item["action"]),
                    item["inputs"],
                    item["outputs"],
                    mono - max(age, 0.0),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


class Prefetched:
    """Reads a run may use instead of repeating them (each at most once, within
    ``PREFETCH_MAX_AGE`` seconds): a step of an action that does not change state, on the
    same connector, target and action with the same inputs, takes the read's outputs
    without calling the target again. State-changing steps always call the target (their
    connectors re-read before acting: issue 7)."""

    def __init__(self, reads: Iterable[Read], *, max_age: float = PREFETCH_MAX_AGE) -> None:
        self._reads = list(reads)
        self._max_age = max_age

    def take(self, connector: str, target: str, action: str, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        now_ = time.monotonic()
        for read in self._reads:
            if (read.connector, read.target, read.action) == (connector, target, action) and dict(read.inputs) == dict(
                inputs
            ):
                self._reads.remove(read)
                return dict(read.outputs) if now_ - read.at <= self._max_age else None
        return None


def execute(
    runbook: Runbook,
    context: dict[str, Any],
    pool: ConnectorPool,
    recorder: Recorder,
    scrub: Scrubber,
    *,
    default_timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    watchdog: Watchdog | None = None,
    prefetched: Prefetched | None = None,
) -> RunResult:
    """Run *runbook*'s steps and its verify with the template *context*; *prefetched*:
    reads made for this request just before (``Prefetched``)."""
    result = RunResult(ok=True, context=context)
    steps_ctx: dict[str, Any] = {}
    context["steps"] = steps_ctx
    plan = list(runbook.steps) + ([runbook.verify] if runbook.verify is not None else [])
    log = get_logger().bind(ticket=context.get("ticket"), runbook=runbook.name)
    typed = frozenset(p.name for p in runbook.model.parameters if p.type != "choice")
    accounts = frozenset(p.name for p in runbook.model.parameters if p.type == "account")
    for step in plan:
        record = _new_record(step)
        try:
            _run_step(
                record, step, context, pool, recorder, scrub, default_timeout, sleep, log, watchdog, typed,
                prefetched, accounts,
            )  # fmt: skip
        except KeyboardInterrupt:
            _interrupted(record)
        result.steps.append(record)
        if record.status == "ok" and step is not runbook.verify:
            outputs = record.raw_outputs
            steps_ctx[step.id] = outputs
            for key in step.action.secret_outputs:
                if isinstance(outputs.get(key), str):
                    result.secrets[f"{step.id}.{key}"] = outputs[key]
        if record.status == "ok" and runbook.model.verify is not None and step is runbook.verify:
            problem = _check_expect(runbook.model.verify.expect, record.raw_outputs)
            if problem:
                record.status, record.reason, record.message = "failed", "verify_failed", problem
        recorder.step_finished(record)
        if record.interrupted and record.status != "failed":  # the step was done, then the interrupt came
            result.ok, result.reason, result.message = False, "interrupted", INTERRUPTED_MESSAGE
            return result
        if record.status == "failed":
            result.ok, result.reason, result.message, result.failed_step = False, record.reason, record.message, step.id
            changed_before = any(r.changed for r in result.steps[:-1])
            result.requester_action = record.requester_action and not changed_before
            log.info("run.failed", step=step.id, reason=record.reason)
            return result
    if plan and all(r.status == "skipped" for r in result.steps):
        # Not one step applied: nothing was read, changed or confirmed, so nothing can be
        # reported as fixed (a choice whose ``kind`` no step's condition names — ``Linux``,
        # ``unix`` — skipped every step and the ticket said "restarted and running").
        result.ok, result.reason, result.message = False, "nothing_ran", NOTHING_RAN_MESSAGE
        log.warning("run.nothing_ran")
    return result


def _check_expect(expect: Mapping[str, Any], outputs: Mapping[str, Any]) -> str:
    wrong = [
        f"{k} should be {_show(v)} but is {_show(outputs.get(k))}" for k, v in expect.items() if outputs.get(k) != v
    ]
    return ("The check after the fix failed: " + "; ".join(wrong)) if wrong else ""


def _show(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


class StepStopped(Timeout):
    """The watchdog had to cancel a step that overran its timeout; never retried."""

    transient = False


def _call(
    conn: Connector, action: str, inputs: dict[str, Any], timeout: float, watchdog: Watchdog | None
) -> dict[str, Any]:
    try:
        return _guarded(conn, action, inputs, timeout, watchdog)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (the CLI turns it into this) while a connector with no remote work
        # of its own in flight ran (SSH and WinRM stop theirs and raise Interrupted): what it
        # has running is stopped and the step ends as interrupted, so the run and its ticket
        # end too; the CLI then exits 130
        raise Interrupted.after_cleanup(
            "The run",
            _cancel_quietly(conn),
            done="what the step had started was stopped.",
            not_done="check the target.",
        ) from None


def _guarded(
    conn: Connector, action: str, inputs: dict[str, Any], timeout: float, watchdog: Watchdog | None
) -> dict[str, Any]:
    if watchdog is None:
        return conn.run(action, inputs, timeout=timeout)
    with watchdog.guard(conn, timeout) as guard:
        try:
            outputs = conn.run(action, inputs, timeout=timeout)
        except Exception:
            if not guard.fired:
                raise
            outputs = None
    if guard.fired:
        cleanup = "confirmed" if guard.cleanup_confirmed else "NOT confirmed: check the target"
        raise StepStopped(
            f"The step did not finish within {timeout:g} s and was stopped (cleanup {cleanup}).",
            reason="timeout" if guard.cleanup_confirmed else "timeout_cleanup_unconfirmed",
        )
    assert outputs is not None
    return outputs


def _cancel_quietly(conn: Connector) -> bool:
    try:
        return bool(conn.cancel())
    except Exception:  # noqa: BLE001 - the run is ending anyway; what could not be confirmed is said
        return False


def _new_record(step: CompiledStep) -> StepRecord:
    """The step's record before it runs: failed until it says otherwise."""
    spec, started = step.spec, now()
    return StepRecord(
        step.id,
        spec.connector,
        spec.action,
        None,
        "failed",
        {},
        {},
        None,
        "",
        0,
        started,
        started,
        step.action.changes_state,
    )


def _interrupted(record: StepRecord) -> StepRecord:
    """*record* after a ``KeyboardInterrupt`` outside the action (``_call`` turns one during
    the action into ``Interrupted``): while the step was prepared, its start recorded or
    shown, or a connection opened. A try before it keeps its outcome (``attempt_outcome``);
    an interrupt after the action succeeded leaves the step done. The run ends after it."""
    record.interrupted = True
    if record.status != "ok":
        record.status, record.reason, record.message = "failed", "interrupted", INTERRUPTED_MESSAGE
    record.finished_at = now()
    return record


def _run_step(
    record: StepRecord,
    step: CompiledStep,
    context: dict[str, Any],
    pool: ConnectorPool,
    recorder: Recorder,
    scrub: Scrubber,
    default_timeout: float,
    sleep: Callable[[float], None],
    log: Any,
    watchdog: Watchdog | None = None,
    typed_params: frozenset[str] = frozenset(),
    prefetched: Prefetched | None = None,
    account_params: frozenset[str] = frozenset(),
) -> StepRecord:
    spec = step.spec
    try:
        if step.when is not None and not truthy(step.when.render(context)):
            record.status, record.message = "skipped", "Not needed"
            recorder.step_started(step, None)
            record.finished_at = now()
            return record
        target = str(step.target.render(context)) if step.target is not None else pool.default_target(spec.connector)
        record.target = target
        inputs = render_value(step.inputs, context)
    except (TemplateError, FirstlineError) as exc:
        log.error("step.not_prepared", step=step.id, detail=scrub.text(str(exc)))
        record.reason, record.message = "template_error", TEMPLATE_MESSAGE
        record.finished_at = now()
        return record
    for name in step.action.secret_inputs:
        scrub.add(inputs.get(name))
    record.inputs = {k: _stored_input(step, k, v, scrub, account_params) for k, v in inputs.items()}
    read = None
    if prefetched is not None and not step.action.changes_state:
        read = prefetched.take(spec.connector, target, spec.action, inputs)
    recorder.step_started(step, target, io=read is None)
    timeout = spec.timeout or default_timeout
    retries = getattr(spec, "retries", 0)
    while True:
        record.attempts += 1
        try:
            if read is not None:
                outputs, read = read, None
                record.attempts = 0  # the target was not asked again
            else:
                with pool.using(spec.connector, target) as conn:
                    outputs = _call(conn, spec.action, inputs, timeout, watchdog)
        except ConnectorError as exc:
            if exc.outcome_unknown:  # sticks through a retry: an earlier try may have applied it
                record.attempt_outcome = "unknown"
            if exc.transient and record.attempts <= retries:
                log.info("step.retry", step=step.id, reason=exc.reason, attempt=record.attempts)
                try:
                    sleep(min(2.0, 0.2 * record.attempts))
                except KeyboardInterrupt:
                    record.reason, record.message = "interrupted", INTERRUPTED_WAITING_MESSAGE
                    record.attempt_outcome = record.attempt_outcome or "failure"  # the last try failed
                    break
                continue
            # a connector's own fixed text is shown as it is: it holds nothing the requester typed,
            # even if a typed secret occurs in it (a new password "e" is in every sentence)
            text = str(exc) if exc.fixed_text else scrub.message(str(exc))
            record.reason, record.message = exc.reason, _public(text, log, step.id, exc.reason)
            record.requester_action = _requester_can_fix(exc, step, typed_params)
            record.attempt_outcome = record.attempt_outcome or "failure"
            break
        except FirstlineError as exc:
            log.error("step.config_error", step=step.id, detail=scrub.text(str(exc)))
            record.reason, record.message = "config_error", CONFIG_MESSAGE
            break
        except Exception:
            log.exception("step.crashed", step=step.id)
            record.attempt_outcome = "unknown"  # it broke inside the action: what it did is not known
            record.reason = "internal_error"
            record.message = "An internal error stopped this step; the operator log has the details."
            break
        else:
            for key in step.action.secret_outputs:
                scrub.add(outputs.get(key))
            record.raw_outputs = dict(outputs)
            record.outputs = {
                k: (REDACTED if k in step.action.secret_outputs else scrub.value(v, None)) for k, v in outputs.items()
            }
            record.status, record.message = "ok", "Done" if record.attempts else PREFETCHED_MESSAGE
            if step.action.changes_state:
                reported = outputs.get("changed")
                record.changed_reported = isinstance(reported, bool)
                record.changed = reported if isinstance(reported, bool) else True
                if not record.changed:
                    record.message = NO_CHANGE_MESSAGE
            break
    record.finished_at = now()
    return record


def _stored_input(step: CompiledStep, name: str, value: Any, scrub: Scrubber, account_params: frozenset[str]) -> Any:
    """Input *name* as the step row and the audit keep it: a secret input ``[REDACTED]``; an
    account name made only of ``account`` parameters (a checked name, never a secret) as it
    is, even when a typed secret equals it (masking it would hide whose account it was and
    tell that the password typed was the name); anything else scrubbed."""
    if name in step.action.secret_inputs and value not in (None, ""):
        return REDACTED
    refs = _refs(step.inputs.get(name))
    if isinstance(value, str) and refs and all(r.root == "params" and r.name in account_params for r in refs):
        return value
    return scrub.value(value)


def _refs(template: Any) -> list[Any]:
    """Every name reference of *template* (a value of a step's ``with``, nested or not)."""
    return [r for t in iter_templates(template) for r in t.refs]


def _requester_can_fix(exc: ConnectorError, step: CompiledStep, typed_params: frozenset[str]) -> bool:
    """The connector's own flag when it set one; otherwise an ``InvalidInput`` counts as the
    requester's to fix when the step's inputs come only from parameters the requester typed
    (not inventory choices, not earlier steps' outputs)."""
    if "requester_action" in vars(exc) or exc.requester_action:
        return bool(exc.requester_action)
    if not isinstance(exc, InvalidInput):
        return False
    refs = _refs(step.inputs)
    from_params = [r for r in refs if r.root == "params"]
    return (
        bool(from_params)
        and all(r.root in ("params", "requester") for r in refs)
        and all(r.name in typed_params for r in from_params)
    )


# A server path in a message (/etc/ssh/known_hosts, ../var/lab/ca.crt, C:\\ProgramData\\...).
_PATH = re.compile(r"(?<![\w.:/])(?:~|\.{1,2})?/(?:[\w.@+-]+/)+[\w.@+-]*|(?<!\w)[A-Za-z]:\\\S+")


PATH_WITHHELD = "(a path on the server)"
CONFIG_REASONS = frozenset({"config", "config_error"})


def _public(message: str, log: Any, step_id: str, reason: str | None = None) -> str:
    """*message* if it is fit for the requester. One that names a path on a server (security
    item 18) has its detail in the operator log; people are shown the generic configuration
    text when the connector says configuration is at fault (*reason* ``config``), else the
    message with each path replaced by ``PATH_WITHHELD``: a clean-up that stopped half-way at
    a folder it may not delete is no configuration error, and saying so sent second level
    the wrong way (the files removed and the space freed were in the log only)."""
    if _PATH.search(message):
        log.error("step.detail_withheld", step=step_id, detail=message)
        if reason is None or reason in CONFIG_REASONS:
            return CONFIG_MESSAGE
        return _PATH.sub(PATH_WITHHELD, message)
    return message
