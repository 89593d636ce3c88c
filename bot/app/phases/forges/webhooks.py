"""The forge webhook endpoint's routes, for the forges with a webhook secret or signing token
(:func:`webhook_routes`), and their serving on their own when the dashboard is off
(:func:`serve_webhooks_alone`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bot.app.grounds import Grounds
from bot.app.stops import Stop, Stops
from bot.config.dashboard import DashboardSection
from bot.dashboard.serving.listener import Listening, listen, middleware
from fleet.forge.events.endpoint import Refusal, WebhookEndpoint, WebhookForge
from fleet.forge.events.holds import ForgeHolds
from fleet.forge.runs.work import ForgeWork
from fleet.ledger.stores.code.forge import ForgeStore

log = logging.getLogger(__name__)


def webhook_routes(
    at: Grounds, work: ForgeWork, holds: ForgeHolds, forge: ForgeStore
) -> list[web.RouteDef]:
    """The webhook endpoint's routes, for the forges with a webhook secret (or, a GitLab, a
    signing token)."""
    hooked = {
        name: hook
        for name, entry in at.cfg.forges.items()
        if (hook := WebhookForge.of(entry, at.environ)) is not None
    }
    if not hooked:
        return []

    async def audit(refusal: Refusal) -> None:
        detail = f"webhook refused ({refusal.status}): {refusal.why}"
        if refusal.status == 200:
            detail = f"webhook {refusal.delivery}: {refusal.why}"
        await forge.audit_forge(None, "-", "webhook", refusal.status == 200, detail)

    endpoint = WebhookEndpoint(
        hooked,
        receive=work.receive,
        seen=forge.take_delivery,
        audit=audit,
        clock=at.clock,
        held=holds.refusal,
    )
    return endpoint.routes()


async def serve_webhooks_alone(
    routes: Sequence[web.RouteDef], *, state_dir: Path, stops: Stops, address: str | None = None
) -> Listening | None:
    """Serve ``routes`` on the dashboard's default address (or ``address``), the dashboard
    being off: stopped in its place. ``None`` without routes."""
    if not routes:
        return None
    section = DashboardSection() if address is None else DashboardSection(listen=address)
    settings = section.settings(state_dir)
    app = web.Application(middlewares=[middleware(settings)])
    app.add_routes(list(routes))
    alone = await listen(app, settings)
    stops.add(Stop.DASHBOARD, alone.close)
    log.info("forge webhooks taken on %s:%s", settings.host, alone.port)
    return alone
