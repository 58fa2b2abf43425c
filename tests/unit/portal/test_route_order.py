"""The agents' API router is tried first (``portal.app._ROUTERS``: the one-click fixes are
the hot path) and that changes which route answers nothing: no path one of its routes
answers is answered by any other route with a method in common, or the other way round."""

from __future__ import annotations

import itertools
import re

from starlette.routing import compile_path

from portal.app import _ROUTERS

SAMPLES = ("x", "1", "FL-000001", "corp", "escalated", "mine", "events", "account-unlock", "a/b")


def _routes(*, agents: bool) -> list[tuple[str, frozenset[str], re.Pattern[str]]]:
    from portal.api import agent

    out = []
    for router, prefix in _ROUTERS:
        if (router is agent.router) != agents:
            continue
        for route in router.routes:
            path = prefix + route.path  # type: ignore[attr-defined]
            methods = frozenset(getattr(route, "methods", None) or ())
            out.append((path, methods, compile_path(path)[0]))
    return out


def _paths(template: str) -> set[str]:
    names = re.findall(r"\{[^}]+\}", template)
    found = set()
    for values in itertools.product(SAMPLES, repeat=len(names)):
        path = template
        for name, value in zip(names, values, strict=True):
            path = path.replace(name, value, 1)
        found.add(path)
    return found


def test_no_other_route_answers_what_the_agents_api_answers() -> None:
    mine, others = _routes(agents=True), _routes(agents=False)
    assert len(mine) >= 3 and len(others) > 30
    clashes = [
        (a, b, path)
        for (a, ma, _ra), (b, mb, rb) in [*itertools.product(mine, others), *itertools.product(others, mine)]
        if ma & mb
        for path in _paths(a)
        if rb.match(path)
    ]
    assert clashes == []


def test_the_agents_api_is_tried_first() -> None:
    from portal.api import agent

    assert _ROUTERS[0][0] is agent.router
