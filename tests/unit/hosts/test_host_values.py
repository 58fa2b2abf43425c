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


# -- names compared as the owning system compares them (issue 7, item 11) -----------------------------------------
@pytest.mark.parametrize("value", ["OFFICE-1", "Office-1", "office-1", "oFFICE-1"])
def test_case_insensitive_allow_lists_return_the_allow_listed_spelling(value: str) -> None:
    assert check_allowed("queue", value, ["office-2", "office-1"], "t", case_sensitive=False) == "office-1"


@pytest.mark.parametrize(
    "value",
    [
        "office-1 ",  # trailing space
        " office-1",
        "ｏffice-1",  # fullwidth o
        "office-1\u200b",  # zero-width space
        "office\u200d-1",  # zero-width joiner
        "office\u00ad-1",  # soft hyphen
        "оffice-1",  # Cyrillic o
        "office\u20111",  # non-breaking hyphen
        "office-1.",
        "office-١",  # Arabic-Indic digit one
    ],
)
def test_look_alikes_never_match_an_allow_list_in_either_mode(value: str) -> None:
    for case_sensitive in (True, False):
        with pytest.raises(Rejected) as info:
            check_allowed("queue", value, ["office-1"], "t", case_sensitive=case_sensitive)
        assert info.value.reason == "not_allow_listed"


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("\u212aey", "key"),  # KELVIN SIGN lower-cases to 'k' in Python
        ("\u0130d", "id"),  # I WITH DOT ABOVE lower-cases to 'i' + combining dot
        ("\u017fpool", "spool"),  # LONG S upper-cases to 'S'
        ("ﬁle", "file"),  # ligature
    ],
)
def test_unicode_case_mappings_do_not_fold_into_ascii(value: str, allowed: str) -> None:
    with pytest.raises(Rejected):
        check_allowed("service", value, [allowed], "t", case_sensitive=False)


def test_case_sensitive_allow_lists_refuse_other_spellings() -> None:
    """systemd units and init scripts: LABD is not labd."""
    assert check_allowed("service", "labd", ["labd"], "t") == "labd"
    for value in ("LABD", "Labd"):
        with pytest.raises(Rejected):
            check_allowed("service", value, ["labd"], "t")


@pytest.mark.parametrize(
    "value", ["c:\\temp\\firstline", "C:\\TEMP\\FIRSTLINE", "C:\\Temp\\Firstline\\", "C:\\Temp\\Firstline/"]
)
def test_windows_paths_compare_without_case_and_return_the_allow_listed_spelling(value: str) -> None:
    assert check_path_allowed(value, ["C:\\Temp\\Firstline"], "t", platform="windows") == "C:\\Temp\\Firstline"


@pytest.mark.parametrize(
    "value",
    [
        "C:\\Temp\\Firstline.",  # Windows strips the dot: an alias we do not accept
        "C:\\Temp\\Firstline ",
        "C:\\Temp\\FIRSTL~1",  # 8.3 short name
        "\\\\?\\C:\\Temp\\Firstline",
        "C:\\Temp\\Firstline\u200b",
        "C:\\Temp\\Ｆirstline",
        "C:\\Temp\\Firstline\\..\\Firstline",
    ],
)
def test_windows_path_aliases_are_refused(value: str) -> None:
    with pytest.raises(Rejected):
        check_path_allowed(value, ["C:\\Temp\\Firstline"], "t", platform="windows")


@pytest.mark.parametrize("value", ["/home/svc/lab/CACHE", "/home/svc/lab/cache\\", "/home/svc/lab/cache\u200b"])
def test_posix_paths_are_case_sensitive_and_a_backslash_is_part_of_the_name(value: str) -> None:
    with pytest.raises(Rejected):
        check_path_allowed(value, ["/home/svc/lab/cache"], "print-01")


def test_nfc_and_nfd_spellings_are_different_paths() -> None:
    """Neither NTFS nor ext4 normalises: café (NFC) and café (NFD) are two directories."""
    with pytest.raises(Rejected):
        check_path_allowed("C:\\Temp\\cafe\u0301", ["C:\\Temp\\caf\u00e9"], "t", platform="windows")
