"""runner.pow: the proof-of-work challenge of the self-service request form (security.md item 5)."""

from __future__ import annotations

import hashlib

from runner.pow import ProofOfWork, leading_zero_bits, solve, work

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_a_solution_verifies_once_issued_for_the_address() -> None:
    pw = ProofOfWork(KEY, bits=10)
    ch = pw.issue("10.0.0.1", NOW)
    nonce = solve(ch.token, ch.bits)
    assert leading_zero_bits(work(ch.token, nonce)) >= 10
    ident = pw.verify(ch.token, nonce, "10.0.0.1", NOW + 5)
    assert ident is not None and ident == ch.token.split(".")[1]


def test_refusals_forged_altered_other_address_expired_easier_unsolved() -> None:
    pw = ProofOfWork(KEY, bits=10)
    ch = pw.issue("10.0.0.1", NOW)
    nonce = solve(ch.token, ch.bits)
    v, ident, bits, expires, mac = ch.token.split(".")
    assert pw.verify(ch.token, nonce, "10.0.0.2", NOW) is None  # issued to another address
    assert pw.verify(ch.token, nonce, "10.0.0.1", ch.expires + 1) is None  # expired
    assert pw.verify(".".join((v, ident, "1", expires, mac)), nonce, "10.0.0.1", NOW) is None  # easier: MAC breaks
    later = str(int(expires) + 3600)
    assert pw.verify(".".join((v, ident, bits, later, mac)), nonce, "10.0.0.1", NOW) is None  # longer life
    other = ProofOfWork(b"x" * 32, bits=10)
    assert other.verify(ch.token, nonce, "10.0.0.1", NOW) is None  # another key (another installation)
    harder = ProofOfWork(KEY, bits=12)
    assert harder.verify(ch.token, nonce, "10.0.0.1", NOW) is None  # below today's difficulty
    wrong = next(str(n) for n in range(10_000) if leading_zero_bits(work(ch.token, str(n))) < 10)
    assert pw.verify(ch.token, wrong, "10.0.0.1", NOW) is None  # not solved
    for token, guess in (
        (ch.token, ""),
        (ch.token, "-1"),
        (ch.token, "1e3"),
        (ch.token, "١٢"),
        ("", nonce),
        (None, None),
    ):
        assert pw.verify(token, guess, "10.0.0.1", NOW) is None
    assert pw.verify(ch.token.upper(), nonce, "10.0.0.1", NOW) is None


def test_leading_zero_bits_counts_bits_not_bytes() -> None:
    assert leading_zero_bits(b"\x00\x00\x01") == 23
    assert leading_zero_bits(b"\x80") == 0
    assert leading_zero_bits(b"\x0f") == 4
    assert leading_zero_bits(bytes(4)) == 32
    digest = hashlib.sha256(b"x").digest()
    assert leading_zero_bits(digest) == 8 - digest[0].bit_length()
