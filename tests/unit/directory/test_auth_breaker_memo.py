"""The breaker's secret fingerprint (scrypt, 16 MiB each) is computed once per process and secret,
also when many run slots ask for it at the same moment."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from connectors.auth_breaker import AuthBreaker


def test_concurrent_first_connections_compute_the_fingerprint_once(monkeypatch: pytest.MonkeyPatch) -> None:
    real = hashlib.scrypt
    calls: list[int] = []
    inside = threading.Semaphore(0)

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        inside.release()
        threading.Event().wait(0.05)  # long enough for every other slot to arrive meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    breaker = AuthBreaker()
    start = threading.Barrier(8)
    keys: list[str] = []

    def slot() -> None:
        start.wait()
        keys.append(breaker.key("corp", "cn=firstline,ou=services,dc=example,dc=org", "s3cret-service-pw"))

    threads = [threading.Thread(target=slot) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(keys) == 8 and len(set(keys)) == 1
    assert len(calls) == 1, f"scrypt ran {len(calls)} times side by side (16 MiB each)"
    assert "s3cret-service-pw" not in keys[0]


def test_another_secret_gets_its_own_fingerprint() -> None:
    breaker = AuthBreaker()
    a = breaker.key("corp", "cn=svc", "first-password")
    b = breaker.key("corp", "cn=svc", "second-password")
    assert a != b and a == breaker.key("corp", "cn=svc", "first-password")
