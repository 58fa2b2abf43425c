"""``create_app(settings)``: the portal as one FastAPI application (docs/portal.md).

Started by ``firstline serve`` (uvicorn). Building the app opens the Firstline service
(migrating the database on the embedded default), compiles the translations and mounts
the routers listed in ``_ROUTERS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from portal import errors, i18n, runs
from portal.api import agent as api_agent
from portal.api import audit as api_audit
from portal.api import fixes as api_fixes
from portal.api import kpi as api_kpi
from portal.api import me as api_me
from portal.api import mytickets as api_mytickets
from portal.api import once as api_once
from portal.api import selfservice as api_selfservice
from portal.api import tokens as api_tokens
from portal.deps import PortalContext
from portal.rendering import make_templates
from portal.routes import agent as agent_pages
from portal.routes import audit as audit_pages
from portal.routes import auth as auth_routes
from portal.routes import fixes as fixes_pages
from portal.routes import health, pages
from portal.routes import kpi as kpi_pages
from portal.routes import mytickets as mytickets_pages
from portal.routes import selfservice as selfservice_pages
from portal.security import RouteTable, SecurityMiddleware, parse_networks
from runner.api import open_app
from runner.auth import AuthService
from runner.service import Firstline
from runner.settings import Settings, get_settings

STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"

# (router, prefix): pages at the root, JSON under /api/v1. Add yours here (one line). Routes
# are tried in this order, each a regular expression and some bookkeeping: the agents' API
# (one-click fixes, the hot path) comes first; none of its routes overlaps another, so that
# changes no match (tests/unit/portal/test_route_order.py).
_ROUTERS = (
    (api_agent.router, API_PREFIX),
    (health.router, ""),
    (auth_routes.router, ""),
    (pages.router, ""),
    (api_me.router, API_PREFIX),
    (api_tokens.router, API_PREFIX),
    (audit_pages.router, ""),
    (kpi_pages.router, ""),
    (api_audit.router, API_PREFIX),
    (api_kpi.router, API_PREFIX),
    (fixes_pages.router, ""),
    (mytickets_pages.router, ""),
    (selfservice_pages.router, ""),
    (api_fixes.router, API_PREFIX),
    (api_mytickets.router, API_PREFIX),
    (api_selfservice.router, API_PREFIX),
    (agent_pages.router, ""),
)

# What every JSON request meets before its route: portal.api.once
_API_CHECKS = [Depends(api_once.query_as_declared(API_PREFIX)), Depends(api_once.json_keys_once)]
# Pages refuse a query parameter they do not take, or one given twice, too (``/kpi?sinse=``
# showed the default range as if asked). Not the audit pages, which put the problem above
# their own filter form, nor the open health routes.
_PAGE_CHECKS = [Depends(api_once.query_as_declared(""))]
_OWN_QUERY_CHECK = (health.router, audit_pages.router)


def create_app(settings: Settings | None = None, *, service: Firstline | None = None) -> FastAPI:
    """The portal application over *settings* (default: the environment).

    *service* lets a caller share an already opened ``Firstline`` (tests); otherwise one
    is opened here and closed when the app shuts down. Raises ``ConfigError`` for bad
    settings (e.g. a trusted proxy that is not an address).
    """
    settings = settings or get_settings()
    parse_networks(settings.trusted_proxies)  # the middleware is built lazily: refuse bad settings now
    firstline = service or open_app(settings)
    i18n.load_catalogues()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runs.start(app.state.portal)  # the in-process worker pool and the periodic sweep
        yield
        runs.stop(app.state.portal)
        selfservice_pages.close(app.state.portal)  # waits for queued code mails, then ends its pool
        if service is None:
            firstline.close()

    app = FastAPI(
        title="Firstline",
        version="1",
        docs_url=None,  # /docs is our own page (no CDN, no inline script): portal/routes/health.py
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # Starlette's own /path/ -> /path redirect is built from the Host header; the portal's
        # SecurityMiddleware sends such pages on from the public URL instead (RouteTable.slashless)
        redirect_slashes=False,
    )
    app.state.portal = PortalContext(
        settings=settings,
        firstline=firstline,
        auth=AuthService(firstline),
        templates=make_templates(settings.time_zone),
    )
    errors.install(app)
    app.add_middleware(SecurityMiddleware, settings=settings)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for router, prefix in _ROUTERS:
        checks = _API_CHECKS if prefix == API_PREFIX else [] if router in _OWN_QUERY_CHECK else _PAGE_CHECKS
        app.include_router(router, prefix=prefix, dependencies=checks)
    app.state.route_table = RouteTable(app, _ROUTERS)  # the middleware's 405 / 404, before its CSRF check
    return app
