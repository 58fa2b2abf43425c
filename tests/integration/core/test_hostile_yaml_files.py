"""Hostile YAML files meet `firstline` as a separate process: a runbook whose anchors and
aliases expand to hundreds of millions of values, a runbook of megabytes, a path that leads
to /dev/zero, and an inventory that names a key twice.

Before: `firstline runbooks list` / `check` (and the portal's catalogue, which loads every
runbook) ran for minutes on a 20-line runbook file; PyYAML silently kept the last of two
equal keys in the inventory, so a second ``admin_groups: []`` under a directory target
emptied the admin list and a password reset of an administrator went ahead.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE

from tests.integration.conftest import REPO, start_lab
from tests.integration.directory.helpers import Directory, openldap_directory

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")
ADMINS = "cn=it-admins,ou=groups,dc=example,dc=org"


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    for path in (REPO / "runbooks").iterdir():
        shutil.copy(path, folder / path.name)
    return folder


def _env(tmp_path: Path, runbooks: Path, inventory: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")},
        "FIRSTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "FIRSTLINE_RUNBOOKS_DIR": str(runbooks),
        "FIRSTLINE_INVENTORY": str(inventory),
        "FIRSTLINE_AUDIT_KEY_FILE": str(tmp_path / "keys" / "audit.key"),
        "FIRSTLINE_LOG_FILE": str(tmp_path / "firstline.log"),
        "FIRSTLINE_ENVIRONMENT": "test",
        "COLUMNS": "200",
    }


def _address_space_3_gib() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def fl(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    # the timeout only stops a hung process (without the fix the alias bomb runs for minutes);
    # the memory limit keeps a bomb that is not defused from taking the machine's memory
    return subprocess.run(
        [FIRSTLINE, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_address_space_3_gib,
    )


def _laughs() -> str:
    lines = [
        "schema_version: 1",
        "name: laughs",
        "title: {en: a, nl: b}",
        "description: {en: a, nl: b}",
        "category: x/y",
        "type: request",
        "audience: [agent]",
        "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    ]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    lines += ["parameters: []", "steps: *a8"]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_runbook_is_one_problem_not_a_hang(tmp_path: Path, runbooks: Path) -> None:
    (runbooks / "laughs.yaml").write_text(_laughs())
    (runbooks / "selfref.yaml").write_text("name: selfref\nsteps: &s [a, *s]\n")
    env = _env(tmp_path, runbooks, REPO / "lab" / "inventory.yaml")
    listed = fl(env, "runbooks", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"{runbooks / 'laughs.yaml'}:" in listed.stdout
    assert "more than 100000 values (anchors and aliases expanded)" in listed.stdout
    assert (
        f"{runbooks / 'selfref.yaml'}:2: invalid YAML: an alias refers to the value that contains it" in listed.stdout
    )
    assert "account-unlock" in listed.stdout and "Traceback" not in listed.stdout + listed.stderr
    checked = fl(env, "runbooks", "check")
    assert checked.returncode == 1 and "laughs.yaml" in checked.stdout, checked.stdout + checked.stderr
    ran = fl(env, "run", "laughs", "--dry-run")
    assert ran.returncode == 2 and "Traceback" not in ran.stdout + ran.stderr, ran.stdout + ran.stderr


def test_a_huge_runbook_or_a_device_is_refused_unread(tmp_path: Path, runbooks: Path) -> None:
    text = (runbooks / "account-status.yaml").read_text().replace("name: account-status", "name: huge")
    (runbooks / "huge.yaml").write_text(text + "x_pad:\n" + "".join(f"  - item{i}\n" for i in range(200_000)))
    (runbooks / "zero.yaml").symlink_to("/dev/zero")
    env = _env(tmp_path, runbooks, REPO / "lab" / "inventory.yaml")
    (runbooks / "fifo.yaml").unlink(missing_ok=True)
    os.mkfifo(runbooks / "fifo.yaml")  # a reader would wait for ever
    (runbooks / "shadow.yaml").symlink_to(tmp_path / "outside.yaml")
    (tmp_path / "outside.yaml").write_text("root: $y$j9T$hash-that-must-not-be-printed\n")
    listed = fl(env, "runbooks", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"{runbooks / 'huge'}.yaml:1: too large (a runbook is at most 1048576 bytes)" in listed.stdout
    for name in ("zero", "fifo"):
        assert f"{runbooks / name}.yaml:1: is not a regular file" in listed.stdout, listed.stdout
    assert f"{runbooks / 'shadow'}.yaml:1: is a link to a file outside the runbooks directory" in listed.stdout
    checked = fl(env, "runbooks", "check")
    assert checked.returncode == 1 and "hash-that-must-not-be-printed" not in checked.stdout + checked.stderr
    ran = fl(env, "run", "zero", "--dry-run")
    assert ran.returncode == 2 and "not a regular file" in ran.stderr, ran.stdout + ran.stderr


def _inventory_copy(tmp_path: Path, extra_under_corp: str) -> Path:
    text = (REPO / "lab" / "inventory.yaml").read_text().replace("{file: ../", "{file: " + str(REPO) + "/")
    anchor = "    ppolicy_default_dn: cn=default,ou=policies,dc=example,dc=org\n"
    assert text.count(anchor) == 1
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace(anchor, anchor + extra_under_corp))
    return path


@pytest.fixture
def slapd() -> Iterator[Directory]:
    start_lab("slapd")
    with openldap_directory() as d:
        yield d


def test_a_key_given_twice_in_the_inventory_is_refused_and_the_admin_is_left_alone(
    tmp_path: Path, runbooks: Path, slapd: Directory
) -> None:
    user, pw = slapd.create_user()
    assert slapd.admin.modify(ADMINS, {"member": [(MODIFY_ADD, [slapd.dn(user)])]}), slapd.admin.result
    try:
        inventory = _inventory_copy(tmp_path, "    admin_groups: []\n")
        env = _env(tmp_path, runbooks, inventory)
        before = slapd.state_attrs(user)
        checked = fl(env, "inventory", "check")
        assert checked.returncode != 0, checked.stdout + checked.stderr
        assert "duplicate key 'admin_groups'" in checked.stdout + checked.stderr
        assert "line 20" in checked.stdout + checked.stderr
        reset = fl(env, "run", "password-reset", "-p", f"user={user}")
        everything = reset.stdout + reset.stderr
        assert reset.returncode == 2 and "duplicate key 'admin_groups'" in reset.stderr, everything
        assert "Traceback" not in everything and "temporary password" not in everything
        assert slapd.state_attrs(user) == before and slapd.bind_ok(user, pw)
        # merge keys (<<) and a key that overrides what they merge are no duplicates
        merged = tmp_path / "merged.yaml"
        text = inventory.read_text().replace("    admin_groups: []\n", "")
        text = text.replace("  corp:\n", "  corp:\n    <<: {connect_timeout: 3}\n", 1)
        text = text.replace("    base_dn: ou=people", "    connect_timeout: 4\n    base_dn: ou=people", 1)
        merged.write_text(text)
        ok = fl({**env, "FIRSTLINE_INVENTORY": str(merged)}, "inventory", "check")
        assert ok.returncode == 0 and "valid (5 targets)" in ok.stdout, ok.stdout + ok.stderr
    finally:
        slapd.admin.modify(ADMINS, {"member": [(MODIFY_DELETE, [slapd.dn(user)])]})


def test_a_template_is_not_evaluated_when_the_runbook_loads(tmp_path: Path, runbooks: Path) -> None:
    """Jinja folded constant expressions while compiling, so merely loading an unvetted file
    (`runbooks list`, the portal's catalogue) built `'a' * 10**9` and wrote it into generated
    code: gigabytes, here exit 3 with MemoryError under the 3 GiB limit. Now it is listed as
    not vetted, and it cannot run."""
    text = (runbooks / "account-status.yaml").read_text().replace("name: account-status", "name: evil")
    bomb = "('a' * 10**9)"
    text = text.replace('with: {user: "{{ params.user }}"}', f'with: {{user: "{{{{ {bomb} ~ params.user }}}}"}}')
    text = text.replace("    timeout: 10\n", f"    when: \"{{{{ {bomb} != '' }}}}\"\n    timeout: 10\n", 1)
    assert text.count(bomb) == 2
    (runbooks / "evil.yaml").write_text(text)
    env = _env(tmp_path, runbooks, REPO / "lab" / "inventory.yaml")
    listed = fl(env, "runbooks", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert any(line.split()[:3] == ["evil", "not", "vetted"] for line in listed.stdout.splitlines()), listed.stdout
    ran = fl(env, "run", "evil", "-p", "user=alice")
    assert ran.returncode == 2 and "vet" in ran.stderr and "Traceback" not in ran.stdout + ran.stderr, ran.stderr


def test_an_inventory_that_is_not_utf8_is_a_usage_error_not_an_internal_one(tmp_path: Path, runbooks: Path) -> None:
    """An inventory saved as Latin-1 (`# café` in a comment): `inventory check` said so, but
    `firstline run` answered exit 3, "internal error (UnicodeDecodeError)"."""
    inventory = _inventory_copy(tmp_path, "")
    inventory.write_bytes(b"# caf\xe9\n" + inventory.read_bytes())
    env = _env(tmp_path, runbooks, inventory)
    ran = fl(env, "run", "account-status", "-p", "user=alice")
    assert ran.returncode == 2 and ran.stdout == "", ran.stdout + ran.stderr
    assert ran.stderr.splitlines() == [f"error: inventory {inventory} is not UTF-8 text"], ran.stderr


def test_a_malformed_or_doubled_vetted_lock_is_refused_as_configuration(tmp_path: Path, runbooks: Path) -> None:
    """vetted.lock with "runbooks" as a list answered exit 3 (AttributeError); a runbook named
    twice was read as its last entry, so an approval appended further down overruled the
    one a reviewer reads ("not approved", sha256 0...) and the run went ahead."""
    lock = runbooks / "vetted.lock"
    real = json.loads(lock.read_text())["runbooks"]["account-status"]
    doubled = (
        '{"runbooks": {"account-status": {"sha256": "' + "0" * 64 + '", "approved_by": "not approved", '
        '"approved_at": "2026-11-30T00:00:00+00:00"},\n'
        '"account-status": ' + json.dumps(real) + "}}\n"
    )
    env = _env(tmp_path, runbooks, REPO / "lab" / "inventory.yaml")
    for body, says in (
        ('{"runbooks": []}', "'runbooks' must map runbook names to approvals"),
        ('{"runbooks": {"account-status": "yes"}}', "the approval of 'account-status' must have exactly the texts"),
        (doubled, "'account-status' is given twice"),
    ):
        lock.write_text(body)
        ran = fl(env, "run", "account-status", "-p", "user=alice", "--dry-run")
        assert ran.returncode == 2 and ran.stdout == "", (body, ran.stdout + ran.stderr)
        assert ran.stderr.startswith(f"error: {lock} is unreadable or malformed: {says}"), ran.stderr
