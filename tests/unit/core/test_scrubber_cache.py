"""The scrubber computes the spellings of its secrets once, not on every scrub (issue 8
benchmark: masking cost per step) — and still masks every secret known at the time of the
scrub: one added, one a source gives later, and a source followed later."""

from __future__ import annotations

import pytest

import runner.redaction as redaction
from runner.redaction import REDACTED, WITHHELD, Scrubber


def test_a_secret_added_after_a_scrub_is_masked_in_every_spelling() -> None:
    scrub = Scrubber(["first-Secret-1"])
    assert scrub.text("a second-Secret-2 b") == "a second-Secret-2 b"
    scrub.add("second-Secret-2")
    assert scrub.text("a second-Secret-2 b") == f"a {REDACTED} b"
    assert scrub.text('x "second-Secret-2" first-Secret-1') == f'x "{REDACTED}" {REDACTED}'


def test_values_a_source_gives_later_and_sources_followed_later_are_masked() -> None:
    given: set[str] = set()
    scrub = Scrubber()
    scrub.follow(lambda: frozenset(given))
    assert scrub.text("p\u00e4ss-W0rd-long") == "p\u00e4ss-W0rd-long"
    given.add("p\u00e4ss-W0rd-long")
    assert scrub.text("p\u00e4ss-W0rd-long / p%C3%A4ss-W0rd-long") == f"{REDACTED} / {REDACTED}"
    scrub.follow(lambda: ["late-Source-Secret"])
    assert scrub.text("late-Source-Secret") == REDACTED
    given.clear()
    given.add("other-Secret-99")
    assert scrub.text("other-Secret-99") == REDACTED


def test_spellings_are_not_recomputed_while_nothing_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = redaction.spellings

    def counting(value: str) -> set[str]:
        calls.append(value)
        return original(value)

    monkeypatch.setattr(redaction, "spellings", counting)
    scrub = Scrubber()
    scrub.follow(lambda: frozenset({"svc-Password-1", "svc-Password-2"}))
    for _ in range(50):
        assert scrub.value({"note": "svc-Password-1 and svc-Password-2"}) == {"note": WITHHELD["en"]}
    assert sorted(calls) == ["svc-Password-1", "svc-Password-2"]
