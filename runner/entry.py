"""The ``firstline`` console script: ``runner.cli.main``, imported here so that Ctrl-C while
Python still loads the command's modules (the first half second) ends like Ctrl-C anywhere
else — exit 130, no traceback — instead of a ``KeyboardInterrupt`` traceback."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # runner.cli.EXIT_INTERRUPTED, without importing it


def main() -> None:
    try:
        from runner.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("aborted.\n")
        sys.exit(EXIT_INTERRUPTED)
    cli_main()
