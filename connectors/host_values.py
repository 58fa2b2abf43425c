"""Value checks shared by the host connectors (ssh, winrm).

Every value that reaches a remote command is checked here first, before any quoting:
control characters (NUL, CR, LF, ...) and over-long values are refused, names must match a
conservative pattern, and services/paths must be on the target's allow-list. Quoting
(``shlex.quote`` for SSH argv, PowerShell parameters for WinRM) is the second line of
defence, not the first.

Names are compared as the system that owns them compares them (issue 7, item 11):

* CUPS print queues: case-insensitive (CUPS compares printer names with ``strcasecmp``;
  ``lpstat -o BugTest-Case`` lists the jobs of ``bugtest-case``).
* Windows printers, services and paths: case-insensitive (the Windows print spooler, the
  service control manager and NTFS ignore case).
* systemd units, SysV/LSB init scripts and POSIX paths: case-sensitive (``labd`` and
  ``LABD`` are two different units / files).

Case folding is ASCII only: names are ASCII by the name pattern, and Unicode case mappings
(``"\u212a".lower() == "k"``, the Kelvin sign) must never make a foreign value equal to an
allow-listed one. An allow-list check returns the allow-listed spelling, and the connectors
send that spelling, so a differently-cased value acts on exactly the allow-listed object.
A value with spaces, fullwidth letters or zero-width characters never matches: it is
refused by ``check_name`` (or compared code point by code point for paths).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Literal

from connectors.base import ActionSpec, InputSpec, InvalidInput, Rejected

__all__ = [
    "DISK_CLEANUP",
    "DISK_USAGE",
    "MAX_VALUE_LENGTH",
    "PATH_INPUT",
    "PRINTER_STATUS",
    "PRINT_QUEUE_CLEAR",
    "PRINT_QUEUE_LIST",
    "QUEUE_INPUT",
    "SERVICE_INPUT",
    "SERVICE_OUTPUTS",
    "SERVICE_RESTART",
    "SERVICE_RESTART_OUTPUTS",
    "SERVICE_STATUS",
    "check_allowed",
    "check_name",
    "check_path_allowed",
    "check_text",
    "is_canonical_posix_dir",
    "is_canonical_windows_dir",
    "is_valid_name",
    "resolver_problem",
    "same_name",
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


def _ascii_fold(value: str) -> str:
    """Lower-case the ASCII letters A-Z only; every other code point stays as it is."""
    return value.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def same_name(a: str, b: str, *, case_sensitive: bool) -> bool:
    """Whether two names denote the same object (ASCII-only case folding when not case-sensitive)."""
    return a == b if case_sensitive else _ascii_fold(a) == _ascii_fold(b)


def check_allowed(what: str, value: str, allowed: Iterable[str], target: str, *, case_sensitive: bool = True) -> str:
    """Return the allow-listed spelling of *value*, or refuse it with ``not_allow_listed``.

    Defence in depth below the runbooks. ``case_sensitive=False`` for names the target
    compares without case (CUPS queues, Windows printers and services); only ASCII letters
    are folded, so ``OFFICE-1`` matches ``office-1`` while ``ｏffice-1`` (fullwidth),
    ``office-1\u200b`` (zero-width space) or ``office-1 `` never do.
    """
    for entry in allowed:
        if same_name(value, entry, case_sensitive=case_sensitive):
            return entry
    raise Rejected(f"{what} '{_shown(value)}' is not allow-listed on {target}", reason="not_allow_listed")


def check_path_allowed(
    value: object, allowed: Iterable[str], target: str, *, platform: Literal["posix", "windows"] = "posix"
) -> str:
    """Return the allow-listed spelling of a cleanup path, or refuse it with ``not_allow_listed``.

    POSIX: the path must equal one of *allowed* code point by code point, after removing
    trailing ``/``. Windows: trailing ``\\`` or ``/`` are removed and ASCII letters compare
    without case (NTFS); anything else (a trailing dot or space, an 8.3 short name, another
    Unicode normalisation form) is a different string and is refused. The caller acts on
    the returned, allow-listed spelling.
    """
    text = check_text("path", value, max_length=1024)
    strip = "\\/" if platform == "windows" else "/"
    normalized = text.rstrip(strip) if len(text) > 3 else text
    for entry in allowed:
        if same_name(normalized, entry, case_sensitive=platform == "posix"):
            return entry
    raise Rejected(
        f"path '{_shown(text)}' is not an allow-listed cleanup path on {target}",
        reason="not_allow_listed",
    )


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


def resolver_problem(exc: Exception) -> str:
    """Why an inventory file reference (known_hosts, ca_trust) could not be resolved.

    Plain words without the path or the value: the path goes to the operator log only.
    """
    if isinstance(exc, UnicodeDecodeError):
        return "the file is not UTF-8 text"
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return f"the file cannot be read: {cause.strerror}"
    if "environment variable" in str(exc):
        return "its environment variable is not set"
    return "the reference cannot be resolved"


def is_valid_name(value: str) -> bool:
    """True for a queue/service name both host connectors accept (used by their inventory checks)."""
    return bool(_NAME.match(value))


# The action contract both host connectors share, so that one runbook step reads the same
# whichever kind of print server or host the inventory names.
QUEUE_INPUT = InputSpec("queue", max_length=128)
SERVICE_INPUT = InputSpec("service", max_length=128)
PATH_INPUT = InputSpec("path", max_length=1024)
SERVICE_OUTPUTS = frozenset({"service", "running", "state"})
SERVICE_RESTART_OUTPUTS = SERVICE_OUTPUTS | {"changed", "was_running"}
"""``changed`` is True whenever a restart was carried out (a restart always changes the service);
``was_running``: whether it ran before (read just before the restart), so that a service found
stopped is reported as started, not restarted."""
PRINT_QUEUE_LIST = ActionSpec(
    "print_queue_list",
    inputs=(QUEUE_INPUT, InputSpec("expect_empty", type="bool", required=False)),
    outputs=frozenset({"queue", "jobs", "count"}),
    description="List the jobs in a print queue; expect_empty fails if any remain.",
)
PRINT_QUEUE_CLEAR = ActionSpec(
    "print_queue_clear",
    inputs=(QUEUE_INPUT, InputSpec("expect_empty", type="bool", required=False)),
    outputs=frozenset({"queue", "cancelled", "remaining", "changed"}),
    changes_state=True,
    description=(
        "Remove every job of a print queue and count what remains (stuck jobs), listing the queue "
        "again afterwards; changed = at least one job was cancelled; expect_empty fails if any remain."
    ),
)
PRINTER_STATUS = ActionSpec(
    "printer_status",
    inputs=(QUEUE_INPUT, InputSpec("expect_ready", type="bool", required=False)),
    outputs=frozenset({"queue", "state", "accepting", "message", "ready"}),
    description=(
        "The state of a print queue's printer (idle, printing, holding new jobs, stopped), whether it "
        "accepts jobs, and its state message; ready = it will take and print a new job; "
        "expect_ready fails unless it is ready."
    ),
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
    outputs=SERVICE_RESTART_OUTPUTS,
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
    outputs=frozenset({"path", "freed_bytes", "files_removed", "older_than_days", "changed"}),
    changes_state=True,
    description="Delete files older than the target's limit inside an allow-listed path; changed = a file was removed.",
)
