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

from connectors.base import ActionSpec, InputSpec, InvalidInput, Rejected

__all__ = [
    "DISK_CLEANUP",
    "DISK_USAGE",
    "MAX_VALUE_LENGTH",
    "PATH_INPUT",
    "PRINT_QUEUE_CLEAR",
    "PRINT_QUEUE_LIST",
    "QUEUE_INPUT",
    "SERVICE_INPUT",
    "SERVICE_OUTPUTS",
    "SERVICE_RESTART",
    "SERVICE_STATUS",
    "check_allowed",
    "check_name",
    "check_path_allowed",
    "check_text",
    "is_canonical_posix_dir",
    "is_canonical_windows_dir",
    "is_valid_name",
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


def is_valid_name(value: str) -> bool:
    """True for a queue/service name both host connectors accept (used by their inventory checks)."""
    return bool(_NAME.match(value))


# The action contract both host connectors share, so that one runbook step reads the same
# whichever kind of print server or host the inventory names.
QUEUE_INPUT = InputSpec("queue", max_length=128)
SERVICE_INPUT = InputSpec("service", max_length=128)
PATH_INPUT = InputSpec("path", max_length=1024)
SERVICE_OUTPUTS = frozenset({"service", "running", "state"})
PRINT_QUEUE_LIST = ActionSpec(
    "print_queue_list",
    inputs=(QUEUE_INPUT, InputSpec("expect_empty", type="bool", required=False)),
    outputs=frozenset({"queue", "jobs", "count"}),
    description="List the jobs in a print queue; expect_empty fails if any remain.",
)
PRINT_QUEUE_CLEAR = ActionSpec(
    "print_queue_clear",
    inputs=(QUEUE_INPUT,),
    outputs=frozenset({"queue", "cancelled", "remaining"}),
    changes_state=True,
    description="Remove every job of a print queue and count what remains (stuck jobs).",
)
SERVICE_STATUS = ActionSpec(
    "service_status",
    inputs=(SERVICE_INPUT, InputSpec("expect_running", type="bool", required=False)),
    outputs=SERVICE_OUTPUTS,
    description="Whether an allow-listed service runs; expect_running fails if it does not.",
)
SERVICE_RESTART = ActionSpec(
    "service_restart",
    inputs=(SERVICE_INPUT,),
    outputs=SERVICE_OUTPUTS,
    changes_state=True,
    description="Restart an allow-listed service and confirm it runs.",
)
DISK_USAGE = ActionSpec(
    "disk_usage",
    inputs=(PATH_INPUT,),
    outputs=frozenset({"path", "total_bytes", "used_bytes", "free_bytes", "used_percent"}),
    description="Size and free space of the volume holding an allow-listed path.",
)
DISK_CLEANUP = ActionSpec(
    "disk_cleanup",
    inputs=(PATH_INPUT,),
    outputs=frozenset({"path", "freed_bytes", "files_removed", "older_than_days"}),
    changes_state=True,
    description="Delete files older than the target's limit inside an allow-listed path.",
)
