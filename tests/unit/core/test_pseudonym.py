"""The sign-in and the self-service flows give a typed name the same keyed pseudonym, so an
auditor sees tries on one name line up across both (``runner.pseudonym``)."""

from __future__ import annotations

import hashlib
import hmac

from runner.pseudonym import typed_name


def test_the_pseudonym_is_keyed_stable_and_never_the_text() -> None:
    key = b"k" * 32
    one = typed_name(key, "corp", "zq-a-password-typed-as-a-name")
    assert one == typed_name(key, "corp", "zq-a-password-typed-as-a-name")  # the same name lines up
    assert one.startswith("corp:?") and len(one) == len("corp:?") + 16 and "password" not in one
    assert typed_name(b"x" * 32, "corp", "zq-a-password-typed-as-a-name") != one  # needs the key
    assert typed_name(key, "ad", "zq-a-password-typed-as-a-name") != one
    # the self-service flow's own derivation (before it used this module): unchanged values
    derived = hmac.new(key, b"firstline-selfservice-v1", hashlib.sha256).digest()
    old = hmac.new(derived, b"typed-name\0corp:zq-a-password-typed-as-a-name", hashlib.sha256).hexdigest()[:16]
    assert one == f"corp:?{old}"
