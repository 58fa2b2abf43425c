"""What was read from a file, kept while the file is unchanged (runbooks, ``vetted.lock``).

Every submit and every claim asks for its runbook and for the approvals; reading, hashing
and parsing them each time cost about a tenth of a millisecond per request. A file's
identity — inode, size, and its modification and change times in ns — moves with every
write, ``utime`` or replacement. But a file system stamps those times from the kernel's
coarse clock (one tick: 1 to 10 ms), so two writes of the same size inside one tick can
leave the same identity. What was read is therefore kept only when the file's last change
is ``RACY_NS`` older than the moment the identity was taken: any later write then carries
a later time. Until then the file is read every time. This is the rule git applies to its
index ("racily clean" entries: git's ``Documentation/technical/racy-git.txt``).

On NFS a client may answer ``stat`` from its attribute cache (``acregmin``..``acregmax``,
3 to 60 s by default), so an edit made on another host can take that long to be seen; keep
the runbooks directory on a local file system (docs/deployment.md).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

RACY_NS = 2_000_000_000
"""A file changed less than this before it was looked at (ns) is read again at every use."""

Identity = tuple[int, int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    """(device, inode, size, mtime_ns, ctime_ns) of a ``stat`` result."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _now_ns() -> int:
    return time.time_ns()


class FileMemo(Generic[T]):
    """A value per file path, valid while the file's identity stays the same. Thread-safe.

    Use: ``seen = memo.look(path)`` (the ``stat`` result, taken now; ``OSError`` as
    ``Path.stat`` raises it), then ``memo.known(path, seen)`` — the value kept for exactly
    this identity, or None; after reading the file, ``memo.keep(path, seen, value)`` keeps it
    if the file was already settled when *seen* was taken (``RACY_NS``).
    """

    def __init__(self) -> None:
        self._kept: dict[Path, tuple[Identity, T]] = {}
        self._lock = threading.Lock()

    def look(self, path: Path) -> tuple[os.stat_result, int]:
        """The file's ``stat`` and the wall-clock time (ns) just before it was taken."""
        taken = _now_ns()
        return path.stat(), taken

    def known(self, path: Path, seen: tuple[os.stat_result, int]) -> T | None:
        with self._lock:
            kept = self._kept.get(path)
        if kept is not None and kept[0] == identity(seen[0]):
            return kept[1]
        return None

    def keep(self, path: Path, seen: tuple[os.stat_result, int], value: T) -> None:
        st, taken = seen
        with self._lock:
            if max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS <= taken:
                self._kept[path] = (identity(st), value)
            else:  # changed moments ago: another write in the same clock tick would look the same
                self._kept.pop(path, None)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._kept.pop(path, None)
