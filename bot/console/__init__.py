"""管理后台: the web console for secretaries and admins, beside the webhook app.

One module per page; ``web`` is the plumbing (sessions, CSRF, who may see what),
``auth`` the store side of logins. Pages call the same domain functions as chat and
the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from bot.config import Config
from bot.store import Store


def console_routes(config: Config, store: Store, clock: Callable[[], datetime]) -> list[BaseRoute]:
    from bot.console import audit, calendar, dashboard, exports, meetings, members, notices, questions
    from bot.console.login import login_routes
    from bot.console.web import HERE, Console

    console = Console(config, store, clock)
    routes: list[BaseRoute] = [
        Mount("/console/static", app=StaticFiles(directory=str(HERE / "static")), name="console-static"),
        *login_routes(console),
        console.route("/console/", dashboard.view),
    ]
    for page in (members, questions, notices, meetings, exports, calendar, audit):
        routes += page.routes(console)
    return routes
