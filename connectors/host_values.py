"""Value checks shared by the host connectors (ssh, winrm).

Every value that reaches a remote command is checked here first, before any quoting:
control characters (NUL, CR, LF, ...) and over-long values are refused, names must match a
conservative pattern, and services/paths must be on the target's allow-list. Quoting
(``shlex.quote`` for SSH argv, PowerShell parameters for WinRM) is the second line of
defence, not the first.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from connectors.base import InvalidInput, Rejected

__all__ = [
    "MAX_VALUE_LENGTH",
    "check_allowed",
    "check_name",
    "check_path_allowed",
    "check_text",
    "is_canonical_posix_dir",
    "is_canonical_windows_dir",
]

MAX_VALUE_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Print queues (CUPS names and Windows printer names without spaces) and service names.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def check_text(what: str, value: object, *, max_length: int = MAX_VALUE_LENGTH) -> str:
    """Refuse non-strings, control characters (NUL, newlines) and over-long values."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    if len(value) > max_length:
        raise InvalidInput(f"{what} is too long ({len(value)} characters, at most {max_length})")
    if _CONTROL.search(value):
        raise InvalidInput(f"{what} contains a control character (NUL, newline, ...)")
    if not value:
        raise InvalidInput(f"{what} is empty")
    return value


def check_name(what: str, value: object) -> str:
    """A queue or service name: letters, digits and ``. _ @ -``; nothing a shell would read."""
    text = check_text(what, value, max_length=128)
    if not _NAME.match(text):
        raise InvalidInput(
            f"{what} '{_shown(text)}' contains characters that are not allowed "
            "(use letters, digits, '.', '_', '@' and '-')"
        )
    return text


def check_allowed(what: str, value: str, allowed: Iterable[str], target: str) -> str:
    """Refuse *value* unless it is exactly one of *allowed* (defence in depth below the runbooks)."""
    if value not in set(allowed):
        raise Rejected(f"{what} '{_shown(value)}' is not allow-listed on {target}", reason="not_allow_listed")
    return value


def check_path_allowed(value: object, allowed: Iterable[str], target: str) -> str:
    """A cleanup path must equal one of the target's ``cleanup_paths`` exactly."""
    text = check_text("path", value, max_length=1024)
    normalized = text.rstrip("\\/") if len(text) > 3 else text
    if normalized not in set(allowed):
        raise Rejected(
            f"path '{_shown(text)}' is not an allow-listed cleanup path on {target}",
            reason="not_allow_listed",
        )
    return normalized


def is_canonical_posix_dir(path: str) -> bool:
    """Absolute, normalized (no ``..``, ``.``, ``//``, trailing slash), at least two levels deep."""
    return (
        path.startswith("/")
        and not _CONTROL.search(path)
        and posixpath.normpath(path) == path
        and not path.startswith("//")
        and path.count("/") >= 2
    )


_WIN_DIR = re.compile(r"^[A-Za-z]:\\[^\\/:*?\"<>|\x00-\x1f]+(\\[^\\/:*?\"<>|\x00-\x1f]+)*$")


def is_canonical_windows_dir(path: str) -> bool:
    r"""``C:\Something[\More]``: a drive, at least one level, no ``..``/``.`` parts, no trailing ``\``."""
    if not _WIN_DIR.match(path):
        return False
    return all(part not in (".", "..") for part in path[3:].split("\\"))


def _shown(value: str) -> str:
    """A value as it may appear in a message: short, printable."""
    return value if len(value) <= 60 else value[:57] + "..."
