"""The baseline of bench/portal_home.py: a bare FastAPI + Jinja2 page of a given size.

One route, ``GET /``, renders a template (a header, a search form and a list of cards,
like the portal's home page) padded to ``BARE_BYTES`` bytes (environment variable). No
middleware, no session, no database. Served by uvicorn in a subprocess:
``BARE_BYTES=12000 .venv/bin/python -m uvicorn bench.bare_home:app --port 8123``.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import DictLoader, Environment, select_autoescape

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/static/portal.css"></head>
<body><header><nav aria-label="Main"><a href="/">Home</a> <a href="/me/tickets">My tickets</a></nav></header>
<main><h1>{{ title }}</h1>
<form method="get" action="/"><label for="q">Search</label><input id="q" name="q" value="{{ q }}"></form>
<ul class="cards">{% for card in cards %}
<li class="card"><h2>{{ card.title }}</h2><p>{{ card.text }}</p><a href="/fixes/{{ card.slug }}">Start</a></li>
{% endfor %}</ul></main></body></html>
"""

env = Environment(loader=DictLoader({"home.html": TEMPLATE}), autoescape=select_autoescape())
target = int(os.environ.get("BARE_BYTES", "10000"))
card = {"title": "Unlock my account", "text": "Lifts a lockout caused by too many failed sign-ins. " * 2, "slug": "x"}
per_card = len(env.get_template("home.html").render(title="t", q="", cards=[card])) - len(
    env.get_template("home.html").render(title="t", q="", cards=[])
)
base = len(env.get_template("home.html").render(title="What's wrong?", q="", cards=[]))
CARDS = [card] * max(1, (target - base) // max(per_card, 1))
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    q = request.query_params.get("q", "")
    return HTMLResponse(env.get_template("home.html").render(title="What's wrong?", q=q, cards=CARDS))
