"""Help text reads as sentences on any terminal: Typer's rich help kept a docstring's single
line breaks, so paragraphs wrapped at 100 columns in the source broke mid-sentence at 80
("the runs in" / "progress" / "finish first; ... Exit" / "2 with"). Each paragraph of every
command's docstring is now one line of help text, wrapped by the terminal only."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import typer.main
import typer.rich_utils
from typer.testing import CliRunner

from runner import cli


def _leaves(group: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            out += _leaves(command, [*path, name])
        else:
            out.append(([*path, name], command))
    return out


LEAVES = _leaves(typer.main.get_command(cli.app), [])


def test_every_command_is_checked() -> None:
    names = {" ".join(p) for p, _ in LEAVES}
    assert {"run", "serve", "worker", "db upgrade", "audit verify", "tickets sweep", "runbooks vet"} <= names


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_each_paragraph_of_the_help_is_one_line(path: list[str], command: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = inspect.cleandoc(command.callback.__doc__ or "")
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 500)  # a wide terminal: only the text's own breaks remain
    result = CliRunner().invoke(cli.app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    for paragraph in doc.split("\n\n"):
        sentence = " ".join(part.strip() for part in paragraph.splitlines())
        assert sentence in lines, (path, sentence, result.output[:600])
