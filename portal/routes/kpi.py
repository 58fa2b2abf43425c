"""The KPI page (``/kpi``, everyone signed in): server-rendered SVG charts with a data table
and the definition (``docs/kpi.md``, ``runner/kpi.py``) under each. GET only.

``GET /api/v1/kpi`` (``portal/api/kpi.py``) gives the same figures as JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from portal import charts, i18n
from portal.api.audit import Reader
from portal.deps import allow
from portal.rendering import render
from portal.routes.audit import TIME_EXAMPLES
from portal.texts import N_
from runner.auth import Principal
from runner.errors import ParameterError
from runner.kpi import DEFAULT_DAYS, MAX_DAYS, KpiReport

router = APIRouter(tags=["kpi pages"])
Employee = Annotated[Principal, Depends(allow("employee"))]
Bound = Annotated[str | None, Query(max_length=64)]

# The definitions shown under the charts (msgids; docs/kpi.md has the same text).
DEFINITIONS = {
    "per_day": N_("Tickets opened per UTC calendar day in the range, whatever happened to them after."),
    "fcr": N_(
        "First-contact resolution: resolved tickets that were never handed to a second-level group and had "
        "no repeat (another ticket from the same requester in the same category opened less than 7 days later), "
        "divided by the decided tickets (resolved, escalated or closed). Tickets younger than 7 days are provisional."
    ),
    "self_service": N_(
        "Self-service share: tickets the requester opened for themself through the portal or the API, "
        "divided by all tickets opened. Tickets an agent ran for someone else, and command-line or worker tickets, "
        "are not self-service."
    ),
    "escalation": N_(
        "Escalation rate: decided tickets that were escalated or handed to a group, divided by the decided tickets."
    ),
    "resolve": N_(
        "Median time to resolve: the middle value of (resolved − opened) over resolved tickets; escalated "
        "and closed tickets are left out. Calendar time."
    ),
}


def _charts(report: KpiReport, lang: str) -> list[dict[str, Any]]:
    _ = i18n.gettext
    plain, percent, seconds = charts.formatters(lang)
    translate = i18n.gettext  # for texts marked with N_ above (not extracted twice)
    runbooks = list(report.per_runbook.items())
    out: list[dict[str, Any]] = []

    def add(
        chart_id: str,
        title: str,
        definition: str,
        svg: Markup,
        headers: list[str],
        rows: list[list[Any]],
        fmts: list[Any],
    ) -> None:
        out.append(
            {
                "id": chart_id,
                "title": title,
                "svg": svg,
                "definition": definition,
                "table": charts.data_table(title, headers, rows, fmts=fmts, table_id=f"{chart_id}-table"),
            }
        )

    no_data = _("No tickets in this range")
    per_day_title = _("Tickets per day")
    add(
        "chart-per-day",
        per_day_title,
        translate(DEFINITIONS["per_day"]),
        charts.line_chart(
            "chart-per-day",
            per_day_title,
            _("Line chart of the number of tickets opened on each day of the range."),
            [(d, float(n)) for d, n in report.per_day],
            fmt=plain,
            empty_text=no_data,
        ),
        [_("Day"), _("Tickets"), *report.per_day_by_category],
        [
            [d, n, *(series[i][1] for series in report.per_day_by_category.values())]
            for i, (d, n) in enumerate(report.per_day)
        ],
        [None, plain, *(plain for _c in report.per_day_by_category)],
    )
    # each table's count column is the figure's own denominator (docs/kpi.md): "62.5 % 9"
    # beside a rate of 5 out of 8 decided tickets could not be checked by hand
    decided, tickets, resolved = _("Decided tickets"), _("Tickets"), _("Resolved tickets")
    for chart_id, title, key, fmt, top, definition, (count_title, count_key) in (
        (
            "chart-fcr",
            _("First-contact resolution rate per runbook"),
            "fcr_rate",
            percent,
            1.0,
            "fcr",
            (decided, "decided"),
        ),
        (
            "chart-self",
            _("Self-service share per runbook"),
            "self_service_share",
            percent,
            1.0,
            "self_service",
            (tickets, "tickets"),
        ),
        (
            "chart-esc",
            _("Escalation rate per runbook"),
            "escalation_rate",
            percent,
            1.0,
            "escalation",
            (decided, "decided"),
        ),
        (
            "chart-ttr",
            _("Median time to resolve per runbook"),
            "median_resolve_s",
            seconds,
            None,
            "resolve",
            (resolved, "resolved"),
        ),
    ):
        add(
            chart_id,
            title,
            translate(DEFINITIONS[definition]),
            charts.bar_chart(
                chart_id,
                title,
                _("Bar chart with one bar per runbook; the table below gives the same values."),
                [(name, getattr(s, key)) for name, s in runbooks],
                fmt=fmt,
                top=top,
                empty_text=no_data,
            ),
            [_("Runbook"), title, count_title],
            [[name, getattr(s, key), getattr(s, count_key)] for name, s in runbooks],
            [None, fmt, plain],
        )
    return out


def _category_table(report: KpiReport, lang: str) -> Markup:
    _ = i18n.gettext
    plain, percent, seconds = charts.formatters(lang)
    headers = [
        _("Category"),
        _("Tickets"),
        _("Decided tickets"),  # the denominator of the first-contact resolution and escalation rates
        _("First-contact resolution"),
        _("Self-service share"),
        _("Escalation rate"),
        _("Median time to resolve"),
    ]
    rows: list[list[Any]] = [
        [name, s.tickets, s.decided, s.fcr_rate, s.self_service_share, s.escalation_rate, s.median_resolve_s]
        for name, s in report.per_category.items()
    ]
    fmts = [None, plain, plain, percent, percent, percent, seconds]
    return charts.data_table(_("KPIs per category"), headers, rows, fmts=fmts, table_id="per-category")


@router.get("/kpi")
def kpi_page(request: Request, user: Employee, reader: Reader, since: Bound = None, until: Bound = None) -> Response:
    """KPIs over a range (default: the last 30 days), charts with their definitions."""
    error: str | None = None
    report: KpiReport | None = None
    try:
        report = reader.kpi(since, until)
    except ParameterError as exc:
        error = i18n.error_text(exc)
    o = report.overall if report is not None else None
    lang = request.state.lang
    plain, percent, seconds = charts.formatters(lang)
    figures = []
    if o is not None:
        figures = [
            (i18n.gettext("Tickets"), plain(o.tickets)),
            (i18n.gettext("First-contact resolution"), "–" if o.fcr_rate is None else percent(o.fcr_rate)),
            (
                i18n.gettext("Self-service share"),
                "–" if o.self_service_share is None else percent(o.self_service_share),
            ),
            (
                i18n.gettext("Escalation rate"),
                "–" if o.escalation_rate is None else percent(o.escalation_rate),
            ),
            (
                i18n.gettext("Median time to resolve"),
                "–" if o.median_resolve_s is None else seconds(o.median_resolve_s),
            ),
        ]
    return render(
        request,
        "kpi/kpi.html",
        {
            "report": report,
            "figures": figures,
            "charts": _charts(report, lang) if report is not None else [],
            "category_table": _category_table(report, lang) if report is not None else None,
            "error": error,
            "values": {"since": since or "", "until": until or ""},
            "time_examples": TIME_EXAMPLES,
            "default_days": DEFAULT_DAYS,
            "max_days": MAX_DAYS,
        },
        status_code=422 if error else 200,
    )
