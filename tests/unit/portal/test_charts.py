"""portal.charts: well-formed, accessible SVG and tables; hostile labels stay text."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from portal import charts

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>&\"'<img src=x onerror=alert(2)>"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


@pytest.mark.parametrize("draw", [charts.bar_chart, charts.line_chart])
def test_chart_is_an_accessible_image_with_title_and_description(draw: Any) -> None:
    svg = draw("perday", "Tickets per day", "Tickets opened per UTC day", [("2026-11-01", 3), ("2026-11-02", 5)])
    root = parse(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "perday-title perday-desc"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "Tickets per day" and title.get("id") == "perday-title"
    assert desc is not None and desc.text == "Tickets opened per UTC day" and desc.get("id") == "perday-desc"
    assert "<script" not in svg and "style" not in svg and " on" not in svg.lower().replace(" one", "")
    tips = [t.text for t in root.iter(f"{SVG}title")][1:]
    assert tips == ["2026-11-01: 3", "2026-11-02: 5"]


def test_bars_scale_to_the_largest_value_or_the_given_top() -> None:
    root = parse(charts.bar_chart("b", "t", "d", [("a", 1), ("b", 4)]))
    heights = [float(r.get("height", "0")) for r in root.iter(f"{SVG}rect")]
    assert heights[1] == pytest.approx(4 * heights[0]) and heights[1] == pytest.approx(240 - 16 - 40)
    rates = parse(charts.bar_chart("r", "t", "d", [("a", 0.5)], top=1.0, fmt=charts.percent))
    (rect,) = rates.iter(f"{SVG}rect")
    assert float(rect.get("height", "0")) == pytest.approx((240 - 16 - 40) / 2)
    assert "100.0 %" in str(charts.bar_chart("r", "t", "d", [("a", 0.5)], top=1.0, fmt=charts.percent))


@pytest.mark.parametrize("draw", [charts.bar_chart, charts.line_chart])
def test_hostile_text_is_escaped_everywhere(draw: Any) -> None:
    svg = str(draw("x1", HOSTILE, HOSTILE, [(HOSTILE, 1.0)], fmt=lambda v: HOSTILE))
    root = parse(svg)  # still well-formed XML
    assert "<script>" not in svg and "<img" not in svg
    texts = [e.text for e in root.iter() if e.text]
    assert HOSTILE in texts  # shown as the text it is
    table = str(charts.data_table(HOSTILE, [HOSTILE], [[HOSTILE]]))
    assert "<script>" not in table and "&lt;script&gt;" in table


@pytest.mark.parametrize("bad_id", ["", "1abc", 'a" onload="x', "a b", "a" * 65, "é"])
def test_chart_ids_must_be_plain_html_ids(bad_id: str) -> None:
    with pytest.raises(ValueError, match="chart_id"):
        charts.bar_chart(bad_id, "t", "d", [("a", 1)])


def test_missing_values_are_gaps_and_empty_data_says_so() -> None:
    data: list[charts.Point] = [("a", 1), ("b", None), ("c", math.nan), ("d", 2), ("e", math.inf)]
    bars = parse(charts.bar_chart("g", "t", "d", data))
    assert len(list(bars.iter(f"{SVG}rect"))) == 2
    line = parse(charts.line_chart("l", "t", "d", data))
    assert len(list(line.iter(f"{SVG}polyline"))) == 2 and len(list(line.iter(f"{SVG}circle"))) == 2
    empty = parse(charts.line_chart("e", "t", "d", [], empty_text="Geen gegevens"))
    assert [t.text for t in empty.iter(f"{SVG}text")] == ["Geen gegevens"]
    negative = parse(charts.bar_chart("n", "t", "d", [("a", -5), ("b", 0)]))
    # 0 (and below) is a 2 px sliver on the axis: told apart from no value, which has no bar
    assert [float(r.get("height", "1")) for r in negative.iter(f"{SVG}rect")] == [2.0, 2.0]


def test_many_labels_are_thinned_but_every_value_keeps_its_tooltip() -> None:
    data = [(f"2026-11-{d:02d}", d) for d in range(1, 31)]
    root = parse(charts.bar_chart("m", "t", "d", data))
    assert len(list(root.iter(f"{SVG}rect"))) == 30
    assert len(list(root.iter(f"{SVG}text"))) <= 2 + charts.MAX_X_LABELS


def test_data_table_has_caption_scopes_and_formatted_values() -> None:
    html = str(
        charts.data_table(
            "First-contact resolution",
            ["Runbook", "Rate", "Tickets"],
            [["unlock", 0.8333, 6], ["reset", None, 0]],
            fmts=[None, charts.percent, charts.plain],
        )
    )
    root = parse(html)
    assert root.findtext("caption") == "First-contact resolution"
    assert [th.get("scope") for th in root.iter("th")] == ["col", "col", "col", "row", "row"]
    cells = [[c.text for c in tr] for tr in root.iter("tr")][1:]
    assert cells == [["unlock", "83.3 %", "6"], ["reset", "–", "0"]]


def test_formatters() -> None:
    assert (charts.plain(3.0), charts.plain(2.5), charts.percent(1.0)) == ("3", "2.5", "100.0 %")
    assert (charts.seconds(42), charts.seconds(210), charts.seconds(7560)) == ("42 s", "3.5 min", "2.1 h")


def test_rounding_never_turns_some_into_none_or_nearly_all_into_all() -> None:
    assert [charts.percent(v) for v in (0.0, 0.0004, 0.0005, 0.9995, 0.99949, 1.0)] == [
        "0.0 %",
        "< 0.1 %",
        "< 0.1 %",
        "> 99.9 %",
        "99.9 %",
        "100.0 %",
    ]
    assert charts.percent(0.0004, "nl") == "< 0,1 %" and charts.percent(0.9999, "nl") == "> 99,9 %"
    assert [charts.seconds(v) for v in (0.0, 0.05, 0.99, 1.0)] == ["0 s", "< 1 s", "< 1 s", "1 s"]


def test_formatters_write_numbers_in_the_page_language() -> None:
    plain, percent, seconds = charts.formatters("nl")
    assert (plain(2.5), plain(10000), percent(0.8333), seconds(210), seconds(7560)) == (
        "2,5",
        "10.000",
        "83,3 %",
        "3,5 min",
        "2,1 h",
    )
    plain, percent, seconds = charts.formatters("en")
    assert (plain(2.5), plain(10000), percent(0.8333), seconds(210)) == ("2.5", "10,000", "83.3 %", "3.5 min")


def test_labels_never_overlap_at_their_width() -> None:
    """Twelve dates of ten characters overlapped on the KPI page, and runbook names ran together
    ("password-resetprinter-queue-clear"): as many labels are written as fit side by side."""
    dates = [(f"2026-11-{d:02d}", d) for d in range(1, 31)]
    names = [(n, 1) for n in ("account-status", "account-unlock", "disk-cleanup", "password-change",
                              "password-reset", "printer-queue-clear", "service-restart")]  # fmt: skip
    for data in (dates, names):
        root = parse(charts.bar_chart("w", "t", "d", data))
        spans = []
        for t in root.iter(f"{SVG}text"):
            if t.text not in dict(data):
                continue
            x, w = float(t.get("x", "0")), len(t.text) * 11 * 0.6
            left = {"start": x, "end": x - w}.get(t.get("text-anchor", ""), x - w / 2)
            spans.append((left, left + w))
        spans.sort()
        assert len(spans) >= 2 and all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
