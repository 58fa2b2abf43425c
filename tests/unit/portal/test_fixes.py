"""runner.fixes over the repo's runbooks and the lab inventory (nothing is contacted)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import fixes
from runner.api import open_app
from runner.errors import ParameterError
from runner.service import Firstline
from runner.settings import Settings

REPO = Path(__file__).resolve().parents[3]
EMPLOYEE = frozenset({"employee"})
AGENT = frozenset({"employee", "agent"})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firstline]:
    tmp = tmp_path_factory.mktemp("fixes")
    a = open_app(
        Settings(
            environment="test",
            database_url=f"sqlite:///{tmp / 'db.sqlite'}",
            runbooks_dir=REPO / "runbooks",
            inventory=REPO / "lab" / "inventory.yaml",
            audit_key_file=tmp / "audit.key",
            log_file=tmp / "log",
        )
    )
    yield a
    a.close()


def names(entries: list[fixes.Entry]) -> set[str]:
    return {e.name for e in entries}


def test_roles_decide_the_list(app: Firstline) -> None:
    employee = names(fixes.catalogue(app, EMPLOYEE))
    agent = names(fixes.catalogue(app, AGENT))
    assert {"account-unlock", "password-change", "printer-queue-clear"} <= employee
    assert not {"service-restart", "disk-cleanup"} & employee
    # a signed-in employee changes the password with the current one; a reset needs a one-time code
    assert "password-reset" not in employee and fixes.describe(app, "password-reset", EMPLOYEE) is None
    assert {"service-restart", "disk-cleanup", "password-reset"} <= agent and employee <= agent


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("printer", {"printer-queue-clear"}),
        ("PRINTER", {"printer-queue-clear"}),
        ("I forgot my password", set()),  # password-reset: one-time code only, not signed in
        ("ik ben mijn wachtwoord vergeten", set()),
        ("buitengesloten", {"account-unlock"}),
        ("wáchtwoord wijzigen", {"password-change"}),
        ("coffee", set()),
        ("", None),
        ("   ", None),
    ],
)
def test_search_every_word_any_language(app: Firstline, query: str, expected: set[str] | None) -> None:
    found = names(fixes.catalogue(app, EMPLOYEE, "en", query))
    if expected is None:
        assert found == names(fixes.catalogue(app, EMPLOYEE))
    else:
        assert found == expected


def test_employee_forms_never_ask_whose_account(app: Firstline) -> None:
    for entry in fixes.catalogue(app, EMPLOYEE):
        kinds = {f.type for f in entry.fields}
        assert not {"account", "directory"} & kinds, entry.name
        assert "mfa_verified" not in {f.name for f in entry.fields}
    change = fixes.describe(app, "password-change", EMPLOYEE, "nl")
    assert change is not None and change.title == "Mijn wachtwoord wijzigen"
    fields = {f.name: f for f in change.fields}
    assert fields["new_password"].input == "password" and fields["new_password"].default is None
    assert fields["old_password"].input == "password" and fields["old_password"].default is None
    agent_reset = fixes.describe(app, "password-reset", AGENT, "en")
    assert agent_reset is not None and {"user", "directory", "mfa_verified"} <= {f.name for f in agent_reset.fields}
    printer = fixes.describe(app, "printer-queue-clear", EMPLOYEE, "en")
    assert printer is not None
    options = dict(printer.fields[0].options)
    assert options["office-1"] == "Office printer 1 (2nd floor)"


def test_form_values_forward_only_the_entry_fields(app: Firstline) -> None:
    change = fixes.describe(app, "password-change", EMPLOYEE, "en")
    assert change is not None
    submitted = {
        "user": "alice",
        "directory": "ad",
        "new_password": "x",
        "new_password_again": "x",
        "mfa_verified": "true",
    }
    values = fixes.form_values(change, submitted)
    assert values == {"new_password": "x"}  # the second typing is checked, not forwarded
    assert fixes.describe(app, "service-restart", EMPLOYEE) is None
    assert fixes.describe(app, "../etc/passwd", EMPLOYEE) is None


@pytest.mark.parametrize(
    ("again", "message"),
    [
        (None, "Type the new password twice."),
        ("", "Type the new password twice."),
        ("y", "The two new passwords are not the same. Type the same password twice."),
        ("X", "The two new passwords are not the same. Type the same password twice."),
        ("x ", "The two new passwords are not the same. Type the same password twice."),
    ],
)
def test_a_new_password_must_be_typed_the_same_twice(app: Firstline, again: str | None, message: str) -> None:
    change = fixes.describe(app, "password-change", EMPLOYEE, "en")
    assert change is not None
    (new,) = [f for f in change.fields if f.confirm]
    assert new.name == "new_password" and new.rules is not None and new.rules["min_length"] >= 8
    assert [f.name for f in change.fields if not f.confirm] == ["old_password"]  # asked once
    submitted = {"old_password": "old", "new_password": "x", **({} if again is None else {"new_password_again": again})}
    with pytest.raises(ParameterError) as refused:
        fixes.form_values(change, submitted)
    assert str(refused.value) == message


def test_the_current_password_field_asks_for_the_current_password(app: Firstline) -> None:
    """A password manager offers the saved password for ``autocomplete="current-password"`` and
    a new one for ``new-password`` (WCAG 1.3.5): the change form's "Current password" said
    new-password, so managers proposed a fresh password where the old one belongs."""
    from portal.rendering import make_templates

    entry = fixes.describe(app, "password-change", EMPLOYEE)
    assert entry is not None
    form = make_templates().env.get_template("fixes/_form.html").module.fix_form(entry, {}, "csrf")  # type: ignore[attr-defined]
    kinds = dict(re.findall(r'name="(\w+)" type="password" autocomplete="([\w-]+)"', str(form)))
    assert kinds == {
        "old_password": "current-password",
        "new_password": "new-password",
        "new_password_again": "new-password",
    }
