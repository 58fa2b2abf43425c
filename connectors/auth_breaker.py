"""A circuit breaker for service credentials: one refused sign-in, then fail fast for a while.

Directories count every failed bind against the service account and lock it after a
few (AD lockout threshold, OpenLDAP ``pwdMaxFailure``); a wrong password in the
inventory would otherwise add one failure per run until the account is locked for good.
After the target refuses the service credentials, ``AuthBreaker.check`` raises the same
``AuthFailed`` again, without contacting the target, until the cool-down has passed
(``auth_failure_cooldown`` of the target, default 300 s).

The breaker is keyed by target name + principal (bind DN) + a fingerprint of the secret,
so a corrected password (a new value in the secret file or variable) closes it at once.

State lives in a process-wide registry (``BREAKERS``), shared by every connector
instance, and — when ``configure(path)`` was called (the runner does, with its data
directory) — in a small JSON file, so that separate ``firstline`` processes (one per CLI
run) share it too. The file holds no secret: the fingerprint is scrypt(secret, per-file
salt), written with mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets as pysecrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.base import AuthFailed

__all__ = ["BREAKERS", "AuthBreaker", "configure"]

DEFAULT_COOLDOWN = 300.0


@dataclass(frozen=True)
class _Trip:
    until: float  # wall-clock seconds (time.time), comparable across processes
    message: str
    reason: str


class AuthBreaker:
    """Open/closed state per (target, principal, secret) — thread-safe, optionally persisted."""

    def __init__(self, state_file: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._trips: dict[str, _Trip] = {}
        self._state_file = state_file
        self._salt = pysecrets.token_bytes(16)
        self._fingerprints: dict[tuple[str, str], str] = {}  # in-memory memo of scrypt results
        self._fingerprint_lock = threading.Lock()

    # ------------------------------------------------------------- keys

    def _fingerprint(self, secret: str, salt: bytes) -> str:
        """scrypt(*secret*, *salt*) as hex, computed once per process and secret.

        One scrypt call (N 2**14, r 8) takes 16 MiB (128·r·N bytes) and ~50 ms of CPU. The
        run slots of a worker open their first connections at once: without the lock each
        missed the memo and computed it side by side — 8 slots, 128 MiB resident at once
        (a Celery worker's peak went from ~150 to 210–240 MB in ``bench/burst.py``).
        """
        memo_key = (salt.hex(), hashlib.sha256(salt + secret.encode("utf-8", "surrogatepass")).hexdigest())
        cached = self._fingerprints.get(memo_key)
        if cached is None:
            with self._fingerprint_lock:  # one computation; the others wait for it
                cached = self._fingerprints.get(memo_key)
                if cached is None:
                    cached = hashlib.scrypt(
                        secret.encode("utf-8", "surrogatepass"), salt=salt, n=2**14, r=8, p=1, dklen=16
                    ).hex()
                    self._fingerprints[memo_key] = cached
        return cached

    def key(self, target: str, principal: str, secret: str) -> str:
        """The breaker key for these credentials (no secret can be recovered from it cheaply)."""
        salt = self._load_salt()
        return f"{target}\x1f{principal.lower()}\x1f{self._fingerprint(secret, salt)}"

    # ------------------------------------------------------------- state

    def check(self, key: str) -> None:
        """Raise the remembered ``AuthFailed`` while the breaker for *key* is open."""
        with self._lock:
            trip = self._trips.get(key) or self._read().get(key)
            if trip is None:
                return
            remaining = trip.until - time.time()
            if remaining <= 0:
                self._trips.pop(key, None)
                return
        minutes = max(1, round(remaining / 60))
        raise AuthFailed(
            f"{trip.message} Not trying again for about {minutes} minute(s), so that the service "
            "account is not locked by repeated failed sign-ins; correcting the password ends the wait.",
            reason=trip.reason,
        )

    def trip(self, key: str, error: AuthFailed, cooldown: float) -> None:
        """Open the breaker for *key* for *cooldown* seconds, remembering *error*'s text."""
        trip = _Trip(time.time() + cooldown, str(error), error.reason)
        with self._lock:
            self._trips[key] = trip
            self._write(key, trip)

    def close(self, key: str) -> None:
        """The credentials worked: forget any trip for *key*."""
        with self._lock:
            had = self._trips.pop(key, None)
            if had is not None or key in self._read():
                self._write(key, None)

    # ------------------------------------------------------------- persistence

    def configure(self, state_file: Path | None) -> None:
        with self._lock:
            self._state_file = state_file

    def _load_salt(self) -> bytes:
        if self._state_file is None:
            return self._salt
        data = self._raw()
        salt = data.get("salt")
        if isinstance(salt, str):
            with contextlib.suppress(ValueError):
                return bytes.fromhex(salt)
        with self._lock:
            data = self._raw()
            if not isinstance(data.get("salt"), str):
                data = {"salt": self._salt.hex(), "trips": {}}
                self._dump(data)
            return bytes.fromhex(str(data["salt"]))

    def _raw(self) -> dict[str, object]:
        if self._state_file is None:
            return {}
        try:
            loaded = json.loads(self._state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _read(self) -> dict[str, _Trip]:
        trips = self._raw().get("trips")
        out: dict[str, _Trip] = {}
        if isinstance(trips, dict):
            for key, value in trips.items():
                if isinstance(value, dict):
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        out[key] = _Trip(float(value["until"]), str(value["message"]), str(value["reason"]))
        return out

    def _write(self, key: str, trip: _Trip | None) -> None:
        if self._state_file is None:
            return
        data = self._raw()
        trips = data.get("trips") if isinstance(data.get("trips"), dict) else {}
        assert isinstance(trips, dict)
        now = time.time()
        trips = {k: v for k, v in trips.items() if isinstance(v, dict) and float(v.get("until", 0)) > now}
        if trip is None:
            trips.pop(key, None)
        else:
            trips[key] = {"until": trip.until, "message": trip.message, "reason": trip.reason}
        data["trips"] = trips
        data.setdefault("salt", self._salt.hex())
        self._dump(data)

    def _dump(self, data: dict[str, object]) -> None:
        assert self._state_file is not None
        path = self._state_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except OSError:
            pass  # the in-process state still protects this process


BREAKERS = AuthBreaker()
"""The process-wide registry every connector uses."""


def configure(state_file: Path | None) -> None:
    """Persist breaker state in *state_file* (shared by every Firstline process using it)."""
    BREAKERS.configure(state_file)
