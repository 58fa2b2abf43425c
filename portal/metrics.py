"""Prometheus metrics of the portal process, served at ``/metrics``.

Import the objects from here (never create a second one of the same name)::

    from portal.metrics import RUNS, RUN_DURATION, QUEUE_DEPTH
    RUNS.labels(runbook="account-unlock", outcome="resolved").inc()
    RUN_DURATION.labels(runbook="account-unlock").observe(seconds)
    QUEUE_DEPTH.set(number_of_queued_runs)

``REQUESTS`` is counted by the security middleware with the route's *template* (e.g.
``/tickets/{number}``), never the raw path, so label values stay few.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "firstline_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
RUNS = Counter(
    "firstline_runs",
    "Runbook runs finished, by runbook and outcome (resolved, escalated, refused, ...).",
    ["runbook", "outcome"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "firstline_run_duration_seconds",
    "Wall time of a run from submission to its final state, in seconds.",
    ["runbook"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("firstline_queue_depth", "Runs waiting to start (queued).", registry=REGISTRY)


def exposition() -> tuple[bytes, str]:
    """The current metrics in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
