"""Value checks shared by the ssh and winrm connectors: hostile input never passes."""

from __future__ import annotations

import pytest

from connectors.base import InvalidInput, Rejected
from connectors.host_values import (
    check_allowed,
    check_name,
    check_path_allowed,
    check_text,
    is_canonical_posix_dir,
    is_canonical_windows_dir,
)

HOSTILE_NAMES = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "'; Stop-Computer;'",
    "office-1; touch /tmp/x",
    "office-1\ncancel -a",
    "office\x00-1",
    "../../etc/passwd",
    "office 1",
    "-a",
    "--help",
    "*",
    "office-1|id",
    "office‮1",  # RTL override
    "оffice-1",  # Cyrillic о (homoglyph)
    "x" * 10_000_000,
    "",
]


@pytest.mark.parametrize("value", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_names_are_refused_with_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_name("queue", value)
    assert len(str(info.value)) < 300, "the message never echoes a huge value"


@pytest.mark.parametrize("value", ["office-1", "Spooler", "W32Time", "labd", "printer_2.floor@lab"])
def test_ordinary_names_pass(value: str) -> None:
    assert check_name("queue", value) == value


@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "a\rb", "a\x1bb", "a\x7fb"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="control character"):
        check_text("value", value)


def test_over_long_text_is_refused() -> None:
    with pytest.raises(InvalidInput, match="too long"):
        check_text("value", "a" * 257)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidInput):
        check_text("value", 12)


def test_value_not_on_the_allow_list_is_rejected_with_reason() -> None:
    with pytest.raises(Rejected) as info:
        check_allowed("service", "sshd", ["labd"], "print-01")
    assert info.value.reason == "not_allow_listed"
    assert "not allow-listed on print-01" in str(info.value)


@pytest.mark.parametrize(
    "path",
    [
        "/home/svc/lab/cache/../../../etc",
        "/home/svc/lab",
        "/home/svc/lab/cache/sub",
        "/",
        "/etc",
        "relative/cache",
        "/home/svc/lab/cache\x00",
        "/home/svc/lab/cache\n/etc",
    ],
)
def test_only_an_exact_allow_listed_path_passes(path: str) -> None:
    with pytest.raises((Rejected, InvalidInput)):
        check_path_allowed(path, ["/home/svc/lab/cache"], "print-01")


def test_trailing_slash_on_an_allow_listed_path_is_the_same_path() -> None:
    assert check_path_allowed("/home/svc/lab/cache/", ["/home/svc/lab/cache"], "t") == "/home/svc/lab/cache"


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/var/tmp/cache", True),
        ("/home/svc-firstline/lab/cache", True),
        ("/", False),
        ("/etc", False),
        ("/var/tmp/../etc", False),
        ("/var/./tmp", False),
        ("/var/tmp/", False),
        ("//var/tmp", False),
        ("var/tmp", False),
        ("/var/tmp\n", False),
    ],
)
def test_canonical_posix_directories(path: str, ok: bool) -> None:
    assert is_canonical_posix_dir(path) is ok


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("C:\\Temp\\Firstline", True),
        ("D:\\Logs", True),
        ("C:\\", False),
        ("C:\\Temp\\..\\Windows", False),
        ("C:\\Temp\\", False),
        ("\\\\server\\share\\x", False),
        ("C:/Temp", False),
        ("C:\\Temp\\a*b", False),
    ],
)
def test_canonical_windows_directories(path: str, ok: bool) -> None:
    assert is_canonical_windows_dir(path) is ok
