"""Directory-side checks that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``).
"""

from __future__ import annotations

import pickle

import pytest

from connectors.password_policy import PasswordPolicy, PolicyViolation

PERSONAL = ["jdevries", "Johanna", "de Vries", "johanna.devries@example.org"]
CASES = {
    "too_short": ("Kurz-Wort-1", {}),
    "too_long": ("Lang-Wort-4711 " * 10, {}),
    "common_password": ("qwertyuiop123456", {}),
    "contains_personal_info": ("Johanna im Garten am Abend", {}),
    "same_as_current": ("gleiches Wort im Garten", {"current": "gleiches Wort im Garten"}),
    "invalid_characters": ("Steuer\x07zeichen im Garten", {}),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_a_refusal_holds_the_candidate_nowhere(reason: str) -> None:
    """Not in the text, not in ``args``, not in any attribute, not in a pickled copy: an
    exception object travels into logs, tracebacks and error reports whole."""
    candidate, kw = CASES[reason]
    with pytest.raises(PolicyViolation) as err:
        PasswordPolicy(max_length=128).check(candidate, personal=PERSONAL, **kw)  # type: ignore[arg-type]
    exc = err.value
    assert exc.reason == reason
    held = repr(exc.args) + repr(vars(exc)) + exc.text("en") + exc.text("nl")
    assert candidate not in held and candidate.strip() not in held
    assert candidate.encode() not in pickle.dumps(exc)


@pytest.mark.parametrize(
    "candidate", ["Jo hanna plant tulpen in mei", "j.devries plant tulpen", "de-Vries plant tulpen"]
)
def test_a_personal_name_split_by_spaces_or_dots_is_still_found(candidate: str) -> None:
    """Spaces (and the separators around them) inside the name do not hide it."""
    with pytest.raises(PolicyViolation) as err:
        PasswordPolicy().check(candidate, personal=PERSONAL)
    assert err.value.reason == "contains_personal_info"
