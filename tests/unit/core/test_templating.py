"""Runbook templates are sandboxed and strict: these fail if runner/templating.py stops using
Jinja2's SandboxedEnvironment or StrictUndefined."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import TemplateError, UndefinedError
from jinja2.sandbox import SecurityError

from runner.templating import _ENV, Template, TemplateProblem, truthy

CTX: dict[str, Any] = {"params": {"user": "alice"}, "requester": "alice", "steps": {"check": {"locked": True}}}

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ params.__class__ }}",
    "{{ requester.__class__.__base__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ params.user.format_map.__self__ }}",
    "{{ (params.values() | list)[0].__class__ }}",
    "x {{ ''.__class__.__mro__ }} y",
    "{{ params.user.__len__() }}",
    "{{ ''.format.__globals__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_python_internals_are_refused_by_the_sandbox(source: str) -> None:
    with pytest.raises((SecurityError, UndefinedError)) as info:
        _ENV.from_string(source).render(CTX)  # the environment every template renders in
    assert isinstance(info.value, TemplateError)


@pytest.mark.parametrize("source", [s for s in ESCAPES if "._" in s or "['_" in s])
def test_a_template_reading_a_private_attribute_does_not_load(source: str) -> None:
    """It loaded, passed ``runbooks check``, and failed only when rendered: a note then fell
    back to "Resolved by automation." Now the runbook does not load, naming the attribute."""
    with pytest.raises(TemplateProblem, match="a private attribute the sandbox refuses"):
        Template(source)


def test_the_sandbox_refuses_calling_unsafe_methods() -> None:
    with pytest.raises(SecurityError):
        Template("{{ '{0.__class__.__mro__}'.format(params) }}").render(CTX)


@pytest.mark.parametrize(
    "source",
    [
        "{{ params.nope }}",
        "x {{ params.nope }} y",
        "{{ steps.missing.locked }}",
        "{{ steps.check.nope }}",
        "{{ steps.missing }}",
        "{% if steps.missing %}a{% endif %}",
        "{{ nothing_here ~ '' }}",
    ],
)
def test_an_undefined_name_is_an_error_not_an_empty_value(source: str) -> None:
    with pytest.raises(UndefinedError):
        Template(source).render(CTX)


def test_undefined_in_a_condition_is_an_error_not_false() -> None:
    with pytest.raises(UndefinedError):
        truthy(Template("{{ steps.missing.locked }}").render(CTX))


def test_defined_values_and_is_defined_still_work() -> None:
    assert Template("{{ steps.check.locked }}").render(CTX) is True
    assert Template("{{ steps.missing is defined }}").render(CTX) is False
    assert Template("user {{ params.user }}").render(CTX) == "user alice"


def test_a_value_that_is_jinjas_undefined_still_fails_as_before() -> None:
    """The fast path for plain reads hands Jinja anything it would not give itself."""
    from jinja2 import StrictUndefined, UndefinedError

    from runner.templating import Template

    for source in ("{{ params.user }}", "x {{ params.user }}"):
        with pytest.raises(UndefinedError):
            Template(source).render({"params": {"user": StrictUndefined(name="user")}})


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 40000000 }}",  # the whole value
        "Note: {{ ('x' * 20000) * 2000 }} done",  # inside text (Jinja's output folding)
        "{{ 'x' | center(40000000) }}",  # a filter on constants
        "{% if true %}{{ 'x' * 40000000 }}{% endif %}",
        "{% for i in [1] %}{{ 'ab' * 20000000 }}{% endfor %}",
    ],
    ids=["value", "text", "filter", "if", "loop"],
)
def test_compiling_a_template_runs_none_of_it(source: str) -> None:
    """Loading a runbook file — ``runbooks check`` and ``vet``, before anyone approved it —
    compiles its templates; Jinja's code generator folded constant output while compiling,
    so ``{{ ('x' * 10000) * 20000 }}`` in a note took gigabytes there. Compiling allocates
    nothing of the sort now; rendering (a vetted runbook) still gives the value."""
    import tracemalloc

    tracemalloc.start()
    try:
        template = Template(source)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"compiling allocated {peak} bytes"
    assert len(str(template.render({}))) >= 40_000_000
