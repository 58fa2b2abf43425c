"""Server-side SVG charts: bars and lines, no JavaScript, accessible, every value escaped.

Each chart is an ``<svg role="img" aria-labelledby="<id>-title <id>-desc">`` with a
``<title>`` and a ``<desc>`` (WAI SVG accessibility; a screen reader announces both), a
``viewBox`` so it scales, and presentation attributes only (no ``style`` attribute or
element, so a CSP without ``'unsafe-inline'`` styles keeps it intact). Every point also
carries its own ``<title>`` (label and value) as a tooltip. ``data_table`` renders the
same numbers as an HTML table to put under the chart: the alternative for people who
cannot see the picture, and the exact values for everyone.

All functions are pure: ``(data) -> markupsafe.Markup``. Labels, titles and formatted
values are escaped with ``markupsafe.escape``; ``chart_id`` must be an HTML id made of
letters, digits, ``-`` and ``_`` (``ValueError`` otherwise). Values that are ``None``,
NaN or infinite are drawn as gaps (bars: no bar; lines: a break) and shown as "–" in the
table; negative values are drawn at 0 (the KPIs are counts, rates and durations).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import partial

from babel.numbers import format_decimal
from markupsafe import Markup, escape

__all__ = ["bar_chart", "data_table", "formatters", "line_chart", "percent", "plain", "seconds"]

Point = tuple[str, float | None]
Formatter = Callable[[float], str]

WIDTH, HEIGHT = 640, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 16, 40
BAR_FILL = "#1f5f9f"  # 7.0:1 on white
LINE_STROKE = "#1f5f9f"
AXIS = "#595959"  # 7.0:1 on white
TEXT = "#1a1a1a"
MAX_X_LABELS = 12
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}", re.ASCII)


def plain(value: float, lang: str = "en") -> str:
    """A count or number without trailing zeros, in *lang*'s digits: 3, 2.5, 10,000 (nl: 2,5, 10.000)."""
    return format_decimal(value, format="#,##0.###", locale=lang)


def _one_decimal(value: float, lang: str) -> str:
    return format_decimal(value, format="#,##0.0", locale=lang)


def percent(value: float, lang: str = "en") -> str:
    """A fraction in [0, 1] as a percentage with one decimal: 0.8333 → 83.3 % (nl: 83,3 %).

    Rounding never turns some into none or nearly all into all: a fraction above 0 that
    would read "0.0 %" reads "< 0.1 %", one below 1 that would read "100.0 %" reads
    "> 99.9 %" (one escalation among 2,500 tickets is not an escalation rate of 0)."""
    text = _one_decimal(value * 100, lang)
    if 0 < value and text == _one_decimal(0, lang):
        return f"< {_one_decimal(0.1, lang)} %"
    if value < 1 and text == _one_decimal(100, lang):
        return f"> {_one_decimal(99.9, lang)} %"
    return f"{text} %"


def seconds(value: float, lang: str = "en") -> str:
    """A duration in seconds, readable: 42 s, 3.5 min, 2.1 h (nl: 3,5 min); a duration above
    0 but under a second reads "< 1 s", never "0 s" (automation resolves in fractions of one)."""
    if 0 < value < 1:
        return "< 1 s"
    if value < 120:
        return f"{format_decimal(round(value), format='#,##0', locale=lang)} s"
    if value < 7200:
        return f"{_one_decimal(value / 60, lang)} min"
    return f"{_one_decimal(value / 3600, lang)} h"


def formatters(lang: str) -> tuple[Formatter, Formatter, Formatter]:
    """``(plain, percent, seconds)`` for the page's language (Babel's decimal sign and grouping)."""
    return partial(plain, lang=lang), partial(percent, lang=lang), partial(seconds, lang=lang)


def _finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _check_id(chart_id: str) -> str:
    if not isinstance(chart_id, str) or not _ID.fullmatch(chart_id):
        raise ValueError("chart_id must be an HTML id: a letter, then letters, digits, '-' or '_' (at most 64)")
    return chart_id


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _frame(chart_id: str, title: str, desc: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" id="{chart_id}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every piece above is escaped or numeric


def _axes(top: float, fmt: Formatter) -> list[str]:
    x0, y0, y1 = PAD_LEFT, HEIGHT - PAD_BOTTOM, PAD_TOP
    return [
        f'<line x1="{x0}" y1="{y0}" x2="{WIDTH - PAD_RIGHT}" y2="{y0}" stroke="{AXIS}" stroke-width="1"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="{AXIS}" stroke-width="1"/>',
        f'<text x="{x0 - 6}" y="{y0}" text-anchor="end" dominant-baseline="middle" font-size="12" '
        f'fill="{TEXT}">{escape(fmt(0.0))}</text>',
        f'<text x="{x0 - 6}" y="{y1}" text-anchor="end" dominant-baseline="middle" font-size="12" '
        f'fill="{TEXT}">{escape(fmt(top))}</text>',
    ]


def _x_labels(labels: Sequence[str], centres: Sequence[float]) -> list[str]:
    # as many labels as fit side by side at their width (about 0.6 em per character at 11 px,
    # 8 px apart): twelve dates of ten characters overlapped, and runbook names ran together
    # ("password-resetprinter-queue-clear", a tester's find); every label stays in the
    # tooltips and the data table
    # (half a width more: a label at either end is anchored inwards, so it reaches a whole
    # width towards its neighbour)
    widest = max((len(label) for label in labels), default=1) * 11 * 0.6
    fits = max(1, min(MAX_X_LABELS, int((WIDTH - PAD_LEFT - PAD_RIGHT) // (widest * 1.5 + 8))))
    step = max(1, math.ceil(len(labels) / fits))
    out = []
    for i in range(0, len(labels), step):
        x = centres[i]
        # labels at the plot's ends are anchored inwards, so they are never cut off
        anchor = "end" if x > WIDTH - PAD_RIGHT - 30 else "start" if x < PAD_LEFT + 30 else "middle"
        out.append(
            f'<text x="{_num(x)}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="{anchor}" font-size="11" '
            f'fill="{TEXT}">{escape(labels[i])}</text>'
        )
    return out


def _empty(chart_id: str, title: str, desc: str, empty_text: str) -> Markup:
    return _frame(
        chart_id,
        title,
        desc,
        [
            f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" font-size="14" '
            f'fill="{TEXT}">{escape(empty_text)}</text>'
        ],
    )


def _scale(values: Sequence[float | None], top: float | None) -> float:
    finite = [v for v in values if v is not None]
    peak = max([*finite, 0.0])
    return top if top is not None and top > 0 else (peak if peak > 0 else 1.0)


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    data: Sequence[Point],
    *,
    fmt: Formatter = plain,
    top: float | None = None,
    empty_text: str = "No data",
) -> Markup:
    """Vertical bars, one per ``(label, value)``; *top* fixes the scale (e.g. 1.0 for rates),
    otherwise the largest value is the top. At most ``MAX_X_LABELS`` labels are written
    under the axis (every label is in each bar's tooltip and in ``data_table``)."""
    _check_id(chart_id)
    if not data:
        return _empty(chart_id, title, desc, empty_text)
    values = [_finite(v) for _, v in data]
    peak = _scale(values, top)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / len(data)
    bar_w = max(1.0, slot * 0.7)
    body = _axes(peak, fmt)
    centres: list[float] = []
    for i, ((label, _), v) in enumerate(zip(data, values, strict=True)):
        cx = PAD_LEFT + slot * i + slot / 2
        centres.append(cx)
        shown = "–" if v is None else fmt(v)
        tip = f"<title>{escape(label)}: {escape(shown)}</title>"
        if v is None:
            continue
        # a value of 0 gets a sliver, so it is told apart from a value there is none of ("–")
        h = max(plot_h * min(max(v, 0.0), peak) / peak, 2.0)
        y = HEIGHT - PAD_BOTTOM - h
        body.append(
            f'<rect x="{_num(cx - bar_w / 2)}" y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}" '
            f'fill="{BAR_FILL}">{tip}</rect>'
        )
    body += _x_labels([label for label, _ in data], centres)
    return _frame(chart_id, title, desc, body)


def line_chart(
    chart_id: str,
    title: str,
    desc: str,
    data: Sequence[Point],
    *,
    fmt: Formatter = plain,
    top: float | None = None,
    empty_text: str = "No data",
) -> Markup:
    """A line through ``(label, value)`` points in order, with a marker per point; a missing
    value breaks the line. Scale as in ``bar_chart``."""
    _check_id(chart_id)
    if not data:
        return _empty(chart_id, title, desc, empty_text)
    values = [_finite(v) for _, v in data]
    peak = _scale(values, top)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(1, len(data) - 1) if len(data) > 1 else 0.0
    body = _axes(peak, fmt)
    xs: list[float] = []
    segment: list[str] = []
    segments: list[list[str]] = []
    markers: list[str] = []
    for i, ((label, _), v) in enumerate(zip(data, values, strict=True)):
        x = PAD_LEFT + (step * i if len(data) > 1 else plot_w / 2)
        xs.append(x)
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        y = HEIGHT - PAD_BOTTOM - plot_h * min(max(v, 0.0), peak) / peak
        segment.append(f"{_num(x)},{_num(y)}")
        markers.append(
            f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{LINE_STROKE}">'
            f"<title>{escape(label)}: {escape(fmt(v))}</title></circle>"
        )
    if segment:
        segments.append(segment)
    for seg in segments:
        body.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{LINE_STROKE}" stroke-width="2"/>')
    body += markers
    body += _x_labels([label for label, _ in data], xs)
    return _frame(chart_id, title, desc, body)


def data_table(
    caption: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str | float | int | None]],
    *,
    fmts: Sequence[Formatter | None] | None = None,
    table_id: str | None = None,
) -> Markup:
    """An HTML table (``<caption>``, ``<th scope="col">``, first cell of each row as
    ``<th scope="row">``); numbers go through *fmts* (per column, None = as text); None
    shows "–". Everything is escaped."""
    attr = f' id="{_check_id(table_id)}"' if table_id else ""
    out = [f'<table class="data"{attr}><caption>{escape(caption)}</caption><thead><tr>']
    out += [f'<th scope="col">{escape(h)}</th>' for h in headers]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            f = fmts[i] if fmts is not None and i < len(fmts) else None
            if cell is None or (isinstance(cell, float) and not math.isfinite(cell)):
                text = "–"
            elif f is not None and isinstance(cell, int | float) and not isinstance(cell, bool):
                text = f(float(cell))
            else:
                text = str(cell)
            tag = '<th scope="row">' if i == 0 else "<td>"
            out.append(f"{tag}{escape(text)}{'</th>' if i == 0 else '</td>'}")
        out.append("</tr>")
    out.append("</tbody></table>")
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped
