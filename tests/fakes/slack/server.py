"""``slack_server(world)``: the fake Slack serving one world on 127.0.0.1 (a free port) —
the Web API at ``{url}/api/<method>`` (:mod:`web_api`), Socket Mode at
``ws://127.0.0.1:PORT/link/`` (:mod:`socket_mode`), HTTP events when asked
(:mod:`http_events`). Everything it started is stopped on the way out, failure or not; a
schema breach in a background delivery is raised then."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.slack.http_events import Poster
from tests.fakes.slack.socket_mode import Hub
from tests.fakes.slack.web_api import WebApi
from tests.fakes.slack.world import SlackWorld

__all__ = ["SlackServer", "slack_server"]


class SlackServer(LoopbackServer):
    def __init__(self, world: SlackWorld) -> None:
        super().__init__()
        self.world = world
        self.hub = Hub(world)
        self.poster = Poster(world)
        self.web_api = WebApi(world)

    def routes(self, app: web.Application) -> None:
        self.web_api.routes(app)
        self.hub.routes(app)

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:PORT/api/`` (slack_sdk's ``base_url``)."""
        return f"{self.base_url}/api/"

    async def start(self) -> None:
        await super().start()
        self.world.base_url = self.base_url
        self.world.sockets = self.hub
        self.world.http = self.poster
        self.hub.start(self.base_url)

    async def before_stop(self) -> None:
        await self.hub.stop()
        for task in list(self.world.tasks):
            task.cancel()
        await asyncio.gather(*self.world.tasks, return_exceptions=True)
        await self.poster.stop()


@asynccontextmanager
async def slack_server(world: SlackWorld) -> AsyncIterator[SlackServer]:
    server = SlackServer(world)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
    if world.failures:
        raise world.failures[0]
