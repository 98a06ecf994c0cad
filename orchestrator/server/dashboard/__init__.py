"""The dashboard `orchestrator serve` serves at `/`: server-rendered Jinja pages with htmx, live over
server-sent events, signed in with a password (a session cookie), acting through the same code as the REST
API under the same rules. See "Dashboard" in docs/architecture.md for how a page is added.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from orchestrator.server.dashboard import access, deployment, history, live, login, overview, promotion
from orchestrator.server.dashboard.pages import HERE, NAV, NavItem

STATIC = "/static"

# (the page's router, its entry in the navigation bar, if it has one); in the bar's order.
PAGES = [
    (overview.router, NavItem("Overview", "/")),
    (promotion.router, NavItem("Promotion", "/promotion")),
    (history.router, NavItem("History", "/history")),
    (access.router, NavItem("Access", "/access")),
    (access.public, None),
    (deployment.router, None),
    (login.router, None),
    (live.router, None),
]


def install(app: FastAPI) -> None:
    """Mount the static files (the vendored libraries, our CSS and scripts) and every page's routes."""
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="static")
    NAV.clear()
    for router, item in PAGES:
        app.include_router(router)
        if item is not None:
            NAV.append(item)
