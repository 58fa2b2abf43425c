"""Every message a ``runner`` error can show a person on the portal has a Dutch translation.

The portal shows a runner error as ``FirstlineError.translated(gettext)``: the message's
English text is looked up in the catalogue. A text that ``pybabel extract`` never saw
(raised in ``runner/``, not marked in ``portal/texts.py``) stayed English on a Dutch page
— "There is no ticket of yours with that number.", "until must be later than since ...",
"the page link is not valid ...", the agent's own-account refusal, the form token's. This
reads every ``raise SomeError("...")`` in ``runner/`` (a literal, or a name bound to one)
and asks the Dutch catalogue for each. Errors only an operator meets (settings, the ledger,
an inventory's size, the time parser's internal codes) are left out by class.
"""

from __future__ import annotations

import ast
from pathlib import Path

from babel.messages.pofile import read_po

import runner.errors

REPO = Path(__file__).resolve().parents[3]
# Met by the operator at the command line or in the log, never on a page (the CLI has its own
# catalogue entries for the ones it prints: runner/clitexts.py).
OPERATOR_ONLY = {"ConfigError", "LedgerError", "InventoryTooLarge", "TimeParseError", "RunbookError", "NotVetted"}


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    names = {n for n, o in vars(runner.errors).items() if isinstance(o, type) and issubclass(o, Exception)}
    grew = True
    while grew:  # subclasses defined anywhere in runner/ and portal/, to a fixed point
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names:
                    bases = {
                        b.id if isinstance(b, ast.Name) else b.attr
                        for b in node.bases
                        if isinstance(b, ast.Name | ast.Attribute)
                    }
                    if bases & names:
                        names.add(node.name)
                        grew = True
    return names


def _constants(tree: ast.Module) -> dict[str, set[str]]:
    """Every ``name = "text"`` in *tree* (module level and inside functions)."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, set()).add(node.value.value)
    return found


def _messages() -> dict[str, str]:
    """English message -> where it is raised, for every user-facing runner error."""
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted((REPO / "runner").rglob("*.py"))}
    trees.update({p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted((REPO / "portal").rglob("*.py"))})
    classes = _error_classes(trees) - OPERATOR_ONLY
    everywhere: dict[str, set[str]] = {}
    for tree in trees.values():
        for name, values in _constants(tree).items():
            everywhere.setdefault(name, set()).update(values)
    out: dict[str, str] = {}
    for path, tree in trees.items():
        if REPO / "portal" in path.parents:
            continue
        local = _constants(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in classes:
                continue
            first = node.exc.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                texts = {first.value}
            elif isinstance(first, ast.Name):
                texts = local.get(first.id) or everywhere.get(first.id) or set()
            else:
                continue  # built at run time: a translated constant picked by code (agent refusals)
            for text in texts:
                out.setdefault(text, f"{path.relative_to(REPO)}:{node.lineno} ({name})")
    return out


def test_every_runner_message_a_page_can_show_is_in_dutch() -> None:
    messages = _messages()
    assert len(messages) > 60  # the scan finds them (a broken scan must not pass quietly)
    with (REPO / "portal" / "locale" / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalogue = read_po(fh)
    dutch = {m.id: m.string for m in catalogue if isinstance(m.id, str) and m.string and not m.fuzzy}
    missing = [
        f"{where}: {text!r}" for text, where in sorted(messages.items(), key=lambda kv: kv[1]) if text not in dutch
    ]
    assert not missing, (
        "not in the Dutch catalogue (mark in portal/texts.py, translate in tools/portal_catalogues.py):\n"
        + "\n".join(missing)
    )


def test_every_audit_chain_problem_reads_in_dutch() -> None:
    """The auditor's banner said "event 30 was altered (column actor differ from the chained
    record)" in English on the Dutch page (a tester's find). Each problem ``verify`` can
    report, and the combination with the head's, reads in Dutch."""
    from runner.texts import chain_problem

    problems = [
        "the checkpoint file cp.jsonl is missing (it is kept outside the database from the first event on)",
        "the audit chain is empty, but the ledger holds tickets (their events are gone)",
        "the checkpoint file audit-checkpoints.jsonl has a line that is no checkpoint (line 3)",
        "checkpoint at 100 has a bad signature",
        "sequence jumps from 3 to 5 (events missing or inserted)",
        "event 7 does not link to event 6",
        "event 7 was altered (hash mismatch)",
        "event 30 was altered (column actor differs from the chained record)",
        "event 30 was altered (columns actor, target differ from the chained record)",
        "event 30 was altered (its stored record is not JSON)",
        "event 30 was altered (its stored record is not a JSON object)",
        "events after 100 differ from the signed checkpoint at 200 (the chain was rewritten)",
        "the chain head's signature does not match (the chain was rewritten)",
        "events after 12 are missing (signed head/checkpoint reaches 15)",
        "events after the signed head 12 were added outside the ledger",
        "the signed chain head is missing",
        "events up to 100 are missing (the chain head is missing)",
        "event 7 was altered (hash mismatch); the chain head's signature does not match either "
        "(the chain was rewritten)",
    ]
    for english in problems:
        dutch = chain_problem(english, "nl")
        assert dutch != english and not {"event", "missing", "altered", "chain"} & set(dutch.split()), dutch
        assert chain_problem(english, "en") == english
