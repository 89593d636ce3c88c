"""How Slack's events reach the connector: slack-bolt's app, over Socket Mode or HTTP.

slack-bolt (:class:`AsyncApp`) acknowledges each envelope (Socket Mode) or request (HTTP)
at once and runs the listener after, so Slack hears back within its 3 seconds whatever the
work; the listeners here only hand the payload to the connector, which translates and
queues it. Events nobody listens for are acknowledged too (Slack would redeliver them).

Socket Mode: slack-sdk's client opens the socket with the app-level token
(``apps.connections.open``), answers Slack's ``disconnect`` by connecting again, and
reconnects a socket that closed or stopped answering pings. An envelope that was not
acknowledged when its socket went is delivered again by Slack on the new one; the ledger's
claim of its id makes it act once.

HTTP: bolt's own aiohttp app on the loopback ``listen`` address, each request's ``v0=``
signature checked against the signing secret (and its timestamp within five minutes)
before anything reads it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import WSMessage, web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.errors import ConnectorAuthError, ConnectorError
from connectors.health import LinkHealth
from connectors.slack.blocks import ACTION_PREFIX
from connectors.slack.reach import NETWORK_ERRORS, SlackUnreachable, unreachable
from connectors.slack.web import AUTH_ERRORS

log = logging.getLogger(__name__)

CONNECT_SECONDS: Final = 30.0
"""How long the start waits for the Socket Mode connection."""
EVENTS_PATH: Final = "/slack/events"
"""Where Slack POSTs events and clicks in http mode."""

Handler = Callable[[Mapping[str, Any], Mapping[str, Any]], Awaitable[None]]
"""Take an event (or a click's payload) and the whole body it came in."""


def bolt_app(
    client: AsyncWebClient,
    signing_secret: str,
    *,
    on_event: Handler,
    on_click: Handler,
) -> AsyncApp:
    """The bolt app: every event to ``on_event``, clicks on our buttons to ``on_click``."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        logger=logging.getLogger("slack_bolt"),
        name="fleetwarden",
        process_before_response=False,  # ack first, work after
        request_verification_enabled=bool(signing_secret),
        ignoring_self_events_enabled=True,
        ssl_check_enabled=True,
        url_verification_enabled=True,
    )

    async def event(event: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        await on_event(event, body)

    async def click(ack: Callable[[], Awaitable[None]], body: Mapping[str, Any]) -> None:
        await ack()
        await on_click(body, body)

    async def other(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()

    app.event(re.compile(".*"))(event)
    app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))(click)
    app.action(re.compile(".*"))(other)
    return app


class SocketTransport:
    """Socket Mode: the app's events over slack-sdk's aiohttp socket client."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        link: LinkHealth,
        *,
        ping_interval: float,
        token_name: str,
    ) -> None:
        self._handler = AsyncSocketModeHandler(
            app, app_token, web_client=app.client, ping_interval=ping_interval
        )
        self._link = link
        self._token_name = token_name
        client = self._handler.client
        client.on_message_listeners.append(self._heard)
        client.on_close_listeners.append(self._closed)
        client.on_error_listeners.append(self._closed)

    async def start(self) -> None:
        """Open the socket (``apps.connections.open``, then the WebSocket) within
        :data:`CONNECT_SECONDS`; a refused app-level token is a :class:`ConnectorAuthError`
        naming ``token_name``."""
        client = self._handler.client
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if error in AUTH_ERRORS or error == "not_allowed_token_type":
                raise ConnectorAuthError(
                    f"slack: the app-level token in {self._token_name} was refused ({error}): "
                    "make one with the connections:write scope (Basic Information → "
                    "App-Level Tokens) and turn Socket Mode on"
                ) from None
            raise ConnectorError(f"slack: apps.connections.open refused: {error}") from None
        except NETWORK_ERRORS as exc:
            raise SlackUnreachable(
                f"slack: apps.connections.open: {unreachable(client.web_client.base_url, exc)}"
            ) from None
        except Exception as exc:
            raise ConnectorError(f"slack: cannot open a Socket Mode connection: {exc}") from None
        try:
            await asyncio.wait_for(
                self._handler.connect_async(),  # type: ignore[no-untyped-call]
                CONNECT_SECONDS,
            )
        except TimeoutError:
            raise ConnectorError(
                f"slack: no Socket Mode connection within {CONNECT_SECONDS:.0f} s"
            ) from None

    async def stop(self) -> None:
        await self._handler.close_async()  # type: ignore[no-untyped-call]

    async def _heard(self, message: WSMessage) -> None:
        self._link.event()
        if not self._link.report().up:
            self._link.connected()

    async def _closed(self, message: WSMessage) -> None:
        self._link.lost(f"the Socket Mode connection closed ({message.type.name})")


class HttpTransport:
    """HTTP events: bolt's aiohttp app on the loopback ``listen`` address."""

    def __init__(self, app: AsyncApp, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        runner = web.AppRunner(self._app.web_app(path=EVENTS_PATH, port=self._port))
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConnectorError(
                f"slack: cannot listen on {self._host}:{self._port} "
                f"(connectors.slack.listen): {exc.strerror or exc}"
            ) from None
        self._runner = runner
        log.info("slack: taking events at http://%s:%d%s", self._host, self._port, EVENTS_PATH)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
