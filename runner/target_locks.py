"""Per-target serialisation: two runs acting on the same account, host object or print
queue never execute their steps at the same time, whichever process or worker holds them.

**What a target is** (``target_keys``): only runbooks with at least one state-changing
step take locks (a status check never waits). Each parameter that names what the run acts
on gives one normalised key:

=====================  =====================================  ====================================
parameter              key                                    normalisation
=====================  =====================================  ====================================
``account``            ``account:<directory>:<name>``         the name as ``RunService._target_key``
                                                              gives it (after routing, case-folded:
                                                              directories compare names without
                                                              case); ``*`` when the runbook has no
                                                              directory parameter
``choice`` with queue  ``queue:<target>:<queue>``             ASCII letters folded, as CUPS and
                                                              Windows compare queue names
``choice`` w/ service  ``service:<target>:<service>``         ASCII letters folded (Windows; on
                                                              Linux two units differing only in case
                                                              merely wait for each other)
``choice`` with path   ``path:<target>:<path>``               trailing ``/`` ``\\`` removed, ASCII
                                                              letters folded (NTFS)
``choice``, target     ``host:<target>``                      the inventory target name
=====================  =====================================  ====================================

Folding errs on the side of one key too few: two spellings that are the same object on
the target always share a key; two objects that merely look alike at most wait for each
other. Keys longer than 255 characters end in a SHA-256 of the whole.

**The lock** is a ``target_lock`` row (revision 0012) keyed by the normalised key: the
primary key makes taking it one atomic insert on SQLite and PostgreSQL. It names the
holding ticket and claim (the run lease's owner token) and carries a lease that the run's
heartbeat renews (``runner.leases``), so a dead holder's lock expires and is taken over.
A run takes its keys in sorted order after its claim and before its first step
(``serialise``) and drops them when it ends; sorted order means two runs that need the same
two keys cannot each hold one and wait for the other. A run that has to wait polls with
back-off (0.05 s growing to 1 s), shows a step row ``target_wait`` ("Waiting for FL-000123
on account:corp:alice") while it waits, and gives up after ``FIRSTLINE_TARGET_WAIT_SECONDS``
(default 60): the caller then escalates the ticket ``target_busy`` naming the other ticket.
Waiting runs are not served in arrival order.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Insert, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from runner.leases import INTERNAL_CONNECTOR, until
from runner.ledger import prepared
from runner.ledger import progress as progress_mod
from runner.ledger.audit import now
from runner.ledger.lease_tables import KEY_LENGTH, target_lock
from runner.ledger.store import transaction
from runner.ledger.tables import ticket
from runner.ledger.tickets import number_of
from runner.redaction import REDACTED
from runner.runbook import Runbook

OBJECT_FIELDS = ("queue", "service", "path")
KINDS = {"account": "account", "queue": "print queue", "service": "service", "path": "folder", "host": "computer"}
WAIT_STEP = "target_wait"
DONE_MEANWHILE_MESSAGE = (
    "Another request ({other}) did the same on the same {what} while this one waited, so it was not "
    "done twice; nothing was changed here. The outcome of {other} stands: a temporary password made "
    "there is the one that works."
)
TARGET_BUSY_MESSAGE = (
    "Another request ({other}) was still working on the same {what} after {seconds:g} s, so this one "
    "was not run; nothing was changed. The service desk will look at it."
)
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def fold(value: str) -> str:
    """Lower-case the ASCII letters only (as CUPS, Windows and ``connectors.host_values``
    compare names); every other code point stays, so a look-alike is another name."""
    return value.translate(_ASCII_LOWER)


def _clip(key: str) -> str:
    if len(key) <= KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[: KEY_LENGTH - len(digest) - 8]}#sha256:{digest}"


def _object_key(kind: str, target: str, value: str) -> str:
    if kind == "path":
        stripped = value.rstrip("/\\")
        value = stripped or value[:1]  # "/" stays "/"
    return _clip(f"{kind}:{target}:{fold(value)}")


def target_keys(
    rb: Runbook, values: Mapping[str, Any], account_key: Callable[[str], tuple[str | None, str]]
) -> list[str]:
    """The sorted, normalised lock keys of a run of *rb* with typed *values* (module
    docstring); empty when *rb* changes nothing. *account_key(param)* gives
    ``(directory key or None, folded name)`` of an account parameter — the rule
    ``RunService._target_key`` applies for the account rules."""
    plan = [*rb.steps, *([rb.verify] if rb.verify is not None else [])]
    if not any(step.action.changes_state for step in plan):
        return []
    keys: set[str] = set()
    for p in rb.model.parameters:
        value = values.get(p.name)
        if p.type == "account" and isinstance(value, str) and value:
            directory, name = account_key(p.name)
            keys.add(_clip(f"account:{directory or '*'}:{name}"))
        elif p.type == "choice" and isinstance(value, Mapping) and value.get("target"):
            target = str(value["target"])
            kind = next((f for f in OBJECT_FIELDS if value.get(f) not in (None, "")), None)
            keys.add(_clip(f"host:{target}") if kind is None else _object_key(kind, target, str(value[kind])))
    return sorted(keys)


def done_meanwhile(conn: Connection, ticket_id: int, runbook: str, params: str, waited: list[int]) -> int | None:
    """The ticket among *waited* that ran the same runbook with the same parameters and was
    resolved while *ticket_id* waited for it, if any (its id).

    Two agents resetting one account at the same time both got "resolved" and a temporary
    password, of which only the second worked. The same change made moments ago is not
    made again: a run that waited for such a twin ends without acting. Only for identical,
    plain parameters (*params*: the ticket's stored JSON): a run with a secret value (a
    password the person chose) is never a twin, and neither is one that asked for anything
    else."""
    try:
        mine = json.loads(params)
    except (TypeError, ValueError):
        return None
    if not waited or not isinstance(mine, dict) or REDACTED in mine.values():
        return None
    rows = conn.execute(
        select(ticket.c.id, ticket.c.params).where(
            ticket.c.id.in_(waited), ticket.c.id != ticket_id, ticket.c.runbook == runbook, ticket.c.state == "resolved"
        )
    ).all()
    for row in rows:
        try:
            theirs = json.loads(row.params)
        except (TypeError, ValueError):
            continue
        if theirs == mine:
            return int(row.id)
    return None


def describe(key: str) -> str:
    """What a key names, for people: ``account``, ``print queue``, ``service``, ``folder``, ``computer``."""
    return KINDS.get(key.split(":", 1)[0], "target")


@dataclass(frozen=True)
class Busy:
    """A lock that could not be had in time: its *key* and the ticket id holding it."""

    key: str
    holder: int

    @property
    def holder_number(self) -> str:
        return number_of(self.holder)


def _if_free(dialect: str) -> Insert | None:
    """``INSERT ... ON CONFLICT (target_key) DO NOTHING`` for *dialect*, built once; None
    where there is no such statement."""
    found = _IF_FREE.get(dialect)
    if found is None and dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        found = _IF_FREE[dialect] = pg_insert(target_lock).on_conflict_do_nothing(index_elements=["target_key"])
    elif found is None and dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        found = _IF_FREE[dialect] = sqlite_insert(target_lock).on_conflict_do_nothing(index_elements=["target_key"])
    return found


_IF_FREE: dict[str, Insert] = {}
_RELEASE_OWNER = delete(target_lock).where(target_lock.c.owner == bindparam("b_owner"))
_STALE = delete(target_lock).where(
    target_lock.c.target_key == bindparam("b_key"),
    or_(
        target_lock.c.lease_until < bindparam("b_now"),
        (target_lock.c.ticket_id == bindparam("b_ticket")) & (target_lock.c.owner != bindparam("b_owner")),
    ),
)
_HOLDER = select(target_lock.c.ticket_id, target_lock.c.owner).where(target_lock.c.target_key == bindparam("b_key"))


def _insert_if_free(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Insert the lock row unless the key is taken; True if inserted. One statement that
    cannot fail on a conflict where the dialect has one (a failed statement would abort a
    PostgreSQL transaction), a savepoint elsewhere."""
    stmt = _if_free(conn.dialect.name)
    if stmt is not None:
        return bool(prepared.execute(conn, stmt, values).rowcount)
    try:
        with conn.begin_nested():
            conn.execute(insert(target_lock), dict(values))
    except IntegrityError:
        return False
    return True


def take_free(conn: Connection, keys: list[str], *, ticket_id: int, owner: str, seconds: float) -> set[str]:
    """In the caller's transaction (the claim's), take each of *keys* that nobody holds,
    without waiting or taking over a stale lock; the keys taken. ``acquire`` then does the
    rest: a key taken here is found to be this *owner*'s and kept."""
    t = now()
    taken = set()
    for key in sorted(keys):
        values = {
            "target_key": key,
            "ticket_id": ticket_id,
            "owner": owner,
            "lease_until": until(seconds),
            "acquired_at": t,
        }
        if _insert_if_free(conn, values):
            taken.add(key)
    return taken


def try_take(engine: Engine, key: str, *, ticket_id: int, owner: str, seconds: float) -> int | None:
    """Take the lock on *key* for *ticket_id* / *owner* (a run lease's owner token) for
    *seconds*; None when it is now ours, else the id of the ticket holding it.

    A lock whose lease has passed (its holder died) and a lock left by an earlier claim of
    the same ticket (re-queued by the sweep) are taken over. ``LedgerError`` on a
    database failure."""
    t = now()
    values = {
        "target_key": key,
        "ticket_id": ticket_id,
        "owner": owner,
        "lease_until": until(seconds),
        "acquired_at": t,
    }
    with transaction(engine) as conn:
        if _insert_if_free(conn, values):  # the usual case: nobody holds it
            return None
        conn.execute(_STALE, {"b_key": key, "b_now": t, "b_ticket": ticket_id, "b_owner": owner})
        if _insert_if_free(conn, values):
            return None
        held = conn.execute(_HOLDER, {"b_key": key}).first()
    if held is None:  # released between our insert and our look: try again at once
        return try_take(engine, key, ticket_id=ticket_id, owner=owner, seconds=seconds)
    return None if held.owner == owner else int(held.ticket_id)


def release(engine: Engine, owner: str) -> None:
    """Drop every lock held by the claim *owner*. ``LedgerError`` on a database failure
    (the locks then expire with their lease)."""
    with transaction(engine) as conn:
        prepared.execute(conn, _RELEASE_OWNER, {"b_owner": owner})


def acquire(
    engine: Engine,
    keys: list[str],
    *,
    ticket_id: int,
    owner: str,
    seconds: float,
    wait: float,
    on_wait: Callable[[int, str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Busy | None:
    """Take every lock of *keys* in sorted order, waiting at most *wait* seconds in all;
    None when all are held, else the first ``Busy`` lock (and none is kept).
    *on_wait(holder ticket id, key)* is called when waiting for a new holder starts."""
    deadline = clock() + wait
    for key in sorted(keys):
        delay, told = 0.05, None
        while True:
            holder = try_take(engine, key, ticket_id=ticket_id, owner=owner, seconds=seconds)
            if holder is None:
                break
            left = deadline - clock()
            if left <= 0:
                release(engine, owner)
                return Busy(key, holder)
            if on_wait is not None and told != holder:
                on_wait(holder, key)
                told = holder
            sleep(min(delay, left))
            delay = min(delay * 1.5, 1.0)
    return None


class Numbered(Protocol):
    """A run's recorder: ``seq`` is the number of its last step row."""

    seq: int


def serialise(
    engine: Engine,
    keys: list[str],
    *,
    ticket_id: int,
    owner: str,
    lease_seconds: float,
    wait: float,
    run_timeout_s: float,
    recorder: Numbered,
    waited: list[int] | None = None,
) -> Busy | None:
    """``acquire`` for a claimed run, with its progress line: the first time it has to
    wait, a ``target_wait`` step row (``running``, "Waiting for FL-000123 on <key>") is
    written with the recorder's next number and finished with the outcome (``ok``, or
    ``failed`` / ``target_busy``). A run that waited gets its deadline restarted (now +
    *run_timeout_s*), so the wait does not count against its steps. *waited* collects the
    ids of the tickets it waited for."""
    row: dict[str, Any] = {}

    def waiting(holder: int, key: str) -> None:
        if waited is not None and holder not in waited:
            waited.append(holder)
        message = f"Waiting for {number_of(holder)} on {key}"
        if row:
            row["message"] = message
            return
        recorder.seq += 1
        row.update(
            seq=recorder.seq,
            step_id=WAIT_STEP,
            connector=INTERNAL_CONNECTOR,
            action="wait_for_target",
            target=key[:128],
            started_at=now(),
            message=message,
        )
        with transaction(engine) as conn:
            progress_mod.step_started(conn, ticket_id, row["seq"], {k: v for k, v in row.items() if k != "seq"})

    busy = acquire(engine, keys, ticket_id=ticket_id, owner=owner, seconds=lease_seconds, wait=wait, on_wait=waiting)
    if row:
        done = {
            **{k: v for k, v in row.items() if k != "seq"},
            "status": "failed" if busy else "ok",
            "inputs": "{}",
            "outputs": "{}",
            "reason": "target_busy" if busy else None,
            "message": (
                f"{busy.holder_number} was still working on {busy.key} after {wait:g} s"
                if busy
                else row["message"].replace("Waiting for", "Waited for", 1)
            ),
            "attempts": 1,
            "finished_at": now(),
        }
        with transaction(engine) as conn:
            progress_mod.step_finished(conn, ticket_id, row["seq"], done)
            if not busy:
                conn.execute(
                    update(ticket)
                    .where(ticket.c.id == ticket_id, ticket.c.state == "running")
                    .values(deadline_at=until(run_timeout_s), updated_at=now())
                )
    return busy
