"""``str.isdigit()`` is true for "²" and other digits ``int()`` refuses: a crafted cookie
(``fl_done=reset.1.²``) or ``Last-Event-ID: ²`` reached ``int()`` and answered 500 (a
tester's finds). Every such check in the product also asks ``isascii()`` on the same line."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_every_digit_check_is_ascii_only() -> None:
    loose = []
    for root in ("runner", "portal", "connectors"):
        for path in sorted((REPO / root).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if ".isdigit()" in line and ".isascii()" not in line:
                    loose.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert loose == [], "\n".join(loose)
