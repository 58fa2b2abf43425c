"""Print the pytest node ids of the failed or errored tests in a JUnit XML report (one per
line), for scripts/test.sh's single rerun of failed tests. Exit 0 always."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def node_ids(report: Path) -> list[str]:
    found = []
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own report
        if case.find("failure") is None and case.find("error") is None:
            continue
        parts = (case.get("classname") or "").split(".")
        # tests.integration.x.test_mod[.Class] -> tests/integration/x/test_mod.py[::Class]
        cut = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        path = "/".join(parts[: cut + 1]) + ".py"
        rest = "::".join([*parts[cut + 1 :], case.get("name") or ""])
        found.append(f"{path}::{rest}")
    return found


if __name__ == "__main__":
    for node in node_ids(Path(sys.argv[1])):
        sys.stdout.write(node + "\n")
