"""The README's "Using it" commands name runbooks, parameters and choices that exist.

A new user copies these lines verbatim against the lab; an example such as
``-p service=labd`` (a service name, not the inventory's choice key) or
``-p cleanup=...`` (a parameter the runbook does not take) fails with exit 2 on
the first try. This reads the README, the runbook files and ``lab/inventory.yaml``
as plain YAML, so it holds whatever the product's loaders do.
"""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _using_it_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()  # trailing comments
        if line.startswith("firstline run "):
            commands.append(shlex.split(line.split(">", 1)[0]))
    return commands


def _runbook(name: str) -> dict[str, Any]:
    path = ROOT / "runbooks" / f"{name}.yaml"
    assert path.is_file(), f"README runs '{name}', which is not a runbook in runbooks/"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _problems(argv: list[str], choices: dict[str, dict[str, Any]]) -> list[str]:
    name = argv[2]
    params = {p["name"]: p for p in _runbook(name).get("parameters") or []}
    problems = []
    for flag, value in itertools.pairwise(argv):
        if flag in ("-p", "--param"):
            key, _, val = value.partition("=")
            spec = params.get(key)
            if spec is None:
                problems.append(f"{name}: no parameter '{key}' (takes: {', '.join(params)})")
            elif spec.get("type") == "choice" and val not in choices.get(spec["source"], {}):
                offered = ", ".join(choices.get(spec["source"], {}))
                problems.append(f"{name}: '{val}' is not a choice of {spec['source']} (offered: {offered})")
        elif flag == "--secret" and value not in params:
            problems.append(f"{name}: --secret {value} is not a parameter")
    return problems


def test_every_run_example_in_the_readme_uses_real_parameters_and_lab_choices() -> None:
    inventory = yaml.safe_load((ROOT / "lab" / "inventory.yaml").read_text(encoding="utf-8"))
    choices = inventory.get("choices") or {}
    commands = _using_it_commands()
    assert len(commands) >= 6, "the README's 'Using it' block lost its firstline run examples"
    problems = [p for argv in commands for p in _problems(argv, choices)]
    assert problems == []


def test_the_check_reports_a_service_name_given_for_a_choice_key() -> None:
    # The fault this guards: the README used the service's own name, not the inventory key.
    inventory = yaml.safe_load((ROOT / "lab" / "inventory.yaml").read_text(encoding="utf-8"))
    choices = inventory.get("choices") or {}
    assert _problems(shlex.split("firstline run service-restart -p service=labd"), choices)
    assert _problems(shlex.split("firstline run disk-cleanup -p cleanup=app-cache"), choices)
    assert not _problems(shlex.split("firstline run disk-cleanup -p location=app-cache"), choices)
