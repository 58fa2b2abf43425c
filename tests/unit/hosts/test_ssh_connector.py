"""The ssh connector without a network: configuration rules, argv building, refusals first."""

from __future__ import annotations

import shlex
from typing import Any

import paramiko
import pytest
from pydantic import ValidationError

from connectors.base import InvalidInput, Rejected
from connectors.ssh import SshConnector, SshTargetConfig
from connectors.ssh_exec import KILL_SCRIPT, LAUNCHER, load_private_key, parse_known_hosts

BASE: dict[str, Any] = {
    "connector": "ssh",
    "address": "192.0.2.1",  # TEST-NET: never contacted by these tests
    "username": "svc-firstline",
    "private_key": {"env": "UNUSED"},
    "known_hosts": {"env": "UNUSED"},
    "allowed_services": ["labd"],
    "allowed_queues": ["office-1"],
    "cleanup_paths": ["/home/svc-firstline/lab/cache"],
}


def make(**over: Any) -> SshConnector:
    cfg = SshTargetConfig.model_validate({**BASE, **over})

    def no_secrets(ref: Any) -> str:
        raise AssertionError("a refused input must not even resolve credentials")

    return SshConnector("print-01", cfg, no_secrets)


def test_password_needs_explicit_key_or_password_auth() -> None:
    with pytest.raises(ValidationError, match="key_or_password"):
        SshTargetConfig.model_validate({**BASE, "password": {"env": "PW"}})
    cfg = SshTargetConfig.model_validate({**BASE, "password": {"env": "PW"}, "auth": "key_or_password"})
    assert cfg.auth == "key_or_password"


def test_key_or_password_without_password_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a 'password'"):
        SshTargetConfig.model_validate({**BASE, "auth": "key_or_password"})


def test_script_service_manager_needs_a_command() -> None:
    with pytest.raises(ValidationError, match="service_command"):
        SshTargetConfig.model_validate({**BASE, "service_manager": "script"})


@pytest.mark.parametrize("path", ["/", "/tmp", "/var/tmp/../etc", "cache", "/var/tmp/"])
def test_cleanup_paths_must_be_canonical_and_deep(path: str) -> None:
    with pytest.raises(ValidationError, match="cleanup path"):
        SshTargetConfig.model_validate({**BASE, "cleanup_paths": [path]})


def test_unknown_config_keys_are_errors() -> None:
    with pytest.raises(ValidationError):
        SshTargetConfig.model_validate({**BASE, "strict_host_key_checking": False})


@pytest.mark.parametrize(
    ("manager", "extra", "status", "restart"),
    [
        (
            "systemd",
            {},
            ["systemctl", "show", "--property=LoadState,ActiveState,SubState", "--", "labd"],
            ["systemctl", "restart", "--", "labd"],
        ),
        ("sysv", {}, ["service", "labd", "status"], ["service", "labd", "restart"]),
        (
            "script",
            {"service_command": ["/opt/bin/svcctl"]},
            ["/opt/bin/svcctl", "status", "labd"],
            ["/opt/bin/svcctl", "restart", "labd"],
        ),
    ],
)
def test_service_manager_argv(manager: str, extra: dict[str, Any], status: list[str], restart: list[str]) -> None:
    conn = make(service_manager=manager, **extra)
    assert conn._manager_argv("status", "labd") == status
    assert conn._manager_argv("restart", "labd") == restart
    sudo = make(service_manager=manager, sudo=True, **extra)
    assert sudo._manager_argv("restart", "labd") == ["sudo", "-n", *restart]
    assert sudo._manager_argv("status", "labd") == status


HOSTILE = ["; rm -rf /", "$(touch /tmp/x)", "`id`", "'; Stop-Computer;'", "a\nb", "a\x00b", "x" * 5000]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("print_queue_list", "queue"),
        ("print_queue_clear", "queue"),
        ("service_status", "service"),
        ("service_restart", "service"),
        ("disk_usage", "path"),
        ("disk_cleanup", "path"),
    ],
)
def test_hostile_values_are_refused_before_any_connection(action: str, key: str, value: str) -> None:
    conn = make()
    with pytest.raises((InvalidInput, Rejected)):
        conn.run(action, {key: value}, timeout=5)
    assert conn.pool.connects == 0


@pytest.mark.parametrize(
    ("action", "inputs"),
    [
        ("service_restart", {"service": "sshd"}),
        ("service_status", {"service": "cron"}),
        ("print_queue_clear", {"queue": "office-2"}),
        ("disk_cleanup", {"path": "/home/svc-firstline"}),
        ("disk_cleanup", {"path": "/etc"}),
    ],
)
def test_values_off_the_allow_lists_are_rejected_as_not_allow_listed(action: str, inputs: dict[str, str]) -> None:
    conn = make()
    with pytest.raises(Rejected) as info:
        conn.run(action, inputs, timeout=5)
    assert info.value.reason == "not_allow_listed"
    assert conn.pool.connects == 0


@pytest.mark.parametrize("argv", [["cancel", "-a", "; rm -rf /"], ["lpstat", "-o", "$(id)", "`id`", "a'b\"c"]])
def test_launcher_command_round_trips_through_a_posix_shell_parser(argv: list[str]) -> None:
    """The remote shell sees exactly the argv elements: quoting leaves nothing to interpret."""
    command = shlex.join([*LAUNCHER, *argv])
    assert shlex.split(command) == [*LAUNCHER, *argv]


def test_every_command_runs_in_the_c_locale_with_sudo_seeing_the_bare_command() -> None:
    """``env LC_ALL=C LANG=C`` first: sudo's own messages follow the caller's locale, and sudoers
    must still match ``systemctl restart -- NAME`` (``sudo env ...`` would need a rule for env)."""
    argv = make(sudo=True)._manager_argv("restart", "labd")
    words = shlex.split(shlex.join([*LAUNCHER, *argv]))
    assert words[:4] == ["exec", "env", "LC_ALL=C", "LANG=C"]
    assert words[words.index("sudo") :] == ["sudo", "-n", "systemctl", "restart", "--", "labd"]
    assert words.index("setsid") > 3  # the environment is set before the command's session starts


def test_kill_script_takes_the_process_group_as_an_argument() -> None:
    assert '"-$1"' in KILL_SCRIPT and "{{" not in KILL_SCRIPT and "%s" not in KILL_SCRIPT


def test_known_hosts_parsing_accepts_plain_and_hashed_entries() -> None:
    key = paramiko.RSAKey.generate(1024)
    line = f"[127.0.0.1]:2222 {key.get_name()} {key.get_base64()}"
    hashed = paramiko.HostKeys.hash_host("[10.0.0.5]:2200")
    text = f"# comment\n{line}\n{hashed} {key.get_name()} {key.get_base64()}\n"
    keys = parse_known_hosts(text)
    assert keys.for_host("127.0.0.1", 2222).verdict(key) == "trusted"
    assert keys.for_host("10.0.0.5", 2200).verdict(key) == "trusted"
    assert keys.for_host("127.0.0.1", 2223).verdict(key) == "unknown"


def test_an_unreadable_private_key_is_reported_without_its_content() -> None:
    from connectors.base import AuthFailed

    with pytest.raises(AuthFailed) as info:
        load_private_key(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key-SECRETMARK\n-----END OPENSSH PRIVATE KEY-----\n"
        )
    assert "SECRETMARK" not in str(info.value)


def test_every_bad_cleanup_path_is_named_by_its_place() -> None:
    """The message's value is masked like any setting's, so "cleanup path '(value not shown)'
    must be absolute" named none of them, and a second bad path went unreported (a tester's
    find): now every bad entry is named by its place in the list."""
    from runner.redaction import describe_validation_error

    with pytest.raises(ValidationError) as info:
        SshTargetConfig.model_validate({**BASE, "cleanup_paths": ["/tmp", "/home/a/b", "rel/x"]})
    said = describe_validation_error(info.value, "targets.print-01")
    assert "cleanup paths number 1, 3 (counting from 1) must be absolute" in said, said
