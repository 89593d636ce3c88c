"""The dashboard's HTTP server, on the project's aiohttp: pages, their ``/api`` twins, live
updates (``/events``, server-sent events), the Tasks page (:mod:`bot.dashboard.pages.task_board`),
``/usage.csv``, ``/changes.csv`` and ``/metrics``.

Read-only by construction: the only routes that are not ``GET`` are ``POST /signin``
(a link's button: using a link only by ``GET`` would let a chat service's link preview
spend it) and ``POST /signout`` (both in :mod:`bot.dashboard.access.signin_routes`). Who may see
what:

- pages and ``/events``: a session cookie (:mod:`bot.dashboard.access.signin`), its person's role
  checked again on every request and every few seconds of a stream; set only for the
  dashboard's own name on this machine (:func:`~bot.config.dashboard.own_name`);
- ``/api/...``: the same cookie, or ``Authorization: Bearer`` with the metrics token (the
  config's ``metrics_token_env``), or, through the state dir's socket only, the status
  token made at this start (:mod:`bot.dashboard.access.status_door`);
- ``/metrics``: the same bearer tokens, or a session cookie; from this machine too (any
  local user, and any web page whose name was pointed here, can reach a loopback port).

Every request must name the dashboard's own address in ``Host``, and every answer carries a
CSP without inline script, no framing and no referrer; connections are capped, in all and
per peer (:mod:`bot.dashboard.serving.listener`), and so are one session's live streams.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config.dashboard import DashboardSettings, own_name
from bot.dashboard.access import status_door
from bot.dashboard.access.signin import SignIns, Viewer
from bot.dashboard.access.signin_routes import SIGNED_OUT, SignInRoutes, message_response
from bot.dashboard.pages import metrics as prom
from bot.dashboard.pages.change_costs import CSV_FIELDS
from bot.dashboard.pages.messages import BadQuery, message_query
from bot.dashboard.pages.pages import Pages
from bot.dashboard.pages.shapes import Json
from bot.dashboard.pages.task_board import BadFilter, task_filter, topic_filter
from bot.dashboard.pages.views import TRANSCRIPT_ENTRIES, UnknownPage, Views
from bot.dashboard.serving.downloads import csv_download
from bot.dashboard.serving.listener import DashboardUnavailable, Listening, listen, middleware
from bot.dashboard.serving.live import MAX_PER_SESSION, Full, LiveHub
from fleet.events import QUIET, FleetEvent
from fleet.ledger.records.peers import MessageRecord

_PAGES = ("fleet", "budgets", "usage", "changes", "accounts", "hosts", "approvals", "audit")
_AGENT = re.compile(r"[a-z][a-z0-9-]{0,62}")
_ENTRIES = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() and int() take others
_BAD_ENTRIES = "?entries= takes a number of entries in ASCII digits, e.g. ?entries=200."
_STREAM_CHECK = 5.0  # seconds between two checks of an open stream's session

__all__ = ["DashboardServer", "DashboardUnavailable"]


class DashboardServer:
    """The web server: :meth:`start` listens, :meth:`stop` closes every stream."""

    def __init__(
        self,
        settings: DashboardSettings,
        *,
        views: Views,
        signins: SignIns,
        metrics: prom.Metrics,
        state_dir: Path,
        environ: Mapping[str, str],
        webhooks: Sequence[web.RouteDef] = (),
    ) -> None:
        self.settings = settings
        self._webhooks = tuple(webhooks)
        self._views = views
        self._signins = signins
        self._metrics = metrics
        self._pages = Pages()
        self._door = SignInRoutes(settings, signins, self._pages)
        self._metrics_token = (
            environ.get(settings.metrics_token_env) or None if settings.metrics_token_env else None
        )
        self._state_dir = state_dir
        self._status_token: str | None = None  # made anew at each start
        self.hub = LiveHub(self._render_topic, signins.live)
        self._listening: Listening | None = None
        self.port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.local_only and self.settings.state_dir is not None:
            try:  # before the Host names are read: links, and the cookie, name it
                own_name(self.settings.state_dir, make=True)
            except OSError as exc:
                raise DashboardUnavailable(
                    f"the dashboard cannot keep its own name in {self.settings.state_dir}: "
                    f"{exc.strerror or exc}; let Fleetwarden's user write there"
                ) from None
        app = web.Application(middlewares=[middleware(self.settings)])
        static = Path(str(files("bot.dashboard") / "static"))
        app.add_routes(
            [
                web.get("/", self._page("fleet")),
                *(web.get(f"/{name}", self._page(name)) for name in _PAGES[1:]),
                web.get("/agents/{name}", self._agent_page),
                web.get("/tasks", self._tasks_page),
                web.get("/usage.csv", self._usage_csv),
                web.get("/changes.csv", self._changes_csv),
                web.get("/api/fleet", self._api("fleet")),
                *(web.get(f"/api/{name}", self._api(name)) for name in _PAGES[1:]),
                web.get("/api/agents/{name}", self._api_agent),
                web.get("/api/tasks", self._api_tasks),
                web.get("/api/messages", self._api_messages),
                web.get("/events", self._events),
                web.get("/metrics", self._scrape),
                *self._door.routes(),
                web.static("/static", static, show_index=False, follow_symlinks=False),
                *self._webhooks,
            ]
        )
        self._listening = await listen(app, self.settings)
        self.port = self._listening.port
        await self._open_status_door(self._listening)

    async def stop(self) -> None:
        await self.hub.stop()
        if self._listening is not None:
            await self._listening.close()
            self._listening = None
            status_door.forget(self._state_dir)

    async def refresh_sessions(self) -> None:
        """The live hub's sessions read again (a scheduler job's look)."""
        await self.hub.refresh_sessions()

    async def _open_status_door(self, listening: Listening) -> None:
        """The state dir's socket ``fleetwarden status`` asks, with a new status token
        (:mod:`bot.dashboard.access.status_door`)."""
        try:
            self._status_token = status_door.new_status_token(self._state_dir)
            sock = status_door.listen(self._state_dir)
            await web.SockSite(listening.runner, sock).start()
        except OSError as exc:
            await self.stop()
            raise DashboardUnavailable(
                f"the dashboard cannot listen on {self._state_dir / status_door.STATUS_SOCKET_FILE}"
                f": {exc.strerror or exc}; let Fleetwarden's user write in its state dir"
            ) from None

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """An agent started, ended or stalled: its page and the fleet's are rendered now
        (a turn's end or a pause is no such news)."""
        if event.kind in QUIET:
            return
        self.hub.poke("fleet")
        self.hub.poke(f"agent:{event.agent}")
        self.hub.poke("tasks")  # a run's start or end moves its task

    async def on_message(self, record: MessageRecord) -> None:
        """A message between agents was sent, refused or delivered: both agents' pages."""
        for agent in dict.fromkeys((record.sender, record.receiver)):
            if _AGENT.fullmatch(agent):
                self.hub.poke(f"agent:{agent}")

    # -- who asks ------------------------------------------------------------------------------

    async def _viewer(self, request: web.Request) -> Viewer | None:
        return await self._door.viewer(request)

    def _bearer(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        given = header[len("Bearer ") :].strip().encode()
        tokens = [self._metrics_token]
        if _on_status_door(request):  # the status token opens nothing on the port
            tokens.append(self._status_token)
        return any(hmac.compare_digest(given, t.encode()) for t in tokens if t)

    def _refused(self, status: int, title: str, text: str) -> web.Response:
        return message_response(self._pages, status, title, text)

    # -- pages ----------------------------------------------------------------------------------

    def _page(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            viewer = await self._viewer(request)
            if viewer is None:
                return self._refused(401, "Sign in", SIGNED_OUT)
            data = await self._data(name)
            html = self._pages.page(name, data, viewer, here=request.path, topic=name)
            return web.Response(text=html, content_type="text/html")

        return handle

    async def _agent_page(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._refused(401, "Sign in", SIGNED_OUT)
        name, entries = request.match_info["name"], _entries(request)
        if entries is None:
            return self._refused(400, "Bad request", _BAD_ENTRIES)
        try:
            data = await self._agent(name, entries)
        except UnknownPage:
            return self._refused(404, "Not found", f"No agent is called {name!r}.")
        topic = f"agent:{name}" if entries == TRANSCRIPT_ENTRIES else ""  # older: not live
        html = self._pages.page("agent", data, viewer, here=request.path, topic=topic)
        return web.Response(text=html, content_type="text/html")

    async def _tasks_page(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._refused(401, "Sign in", SIGNED_OUT)
        try:
            shown = task_filter(request.query)
        except BadFilter as exc:
            return self._refused(400, "Bad request", f"{exc}.")
        try:
            data = await self._views.board.page(shown)
        except BadFilter as exc:
            said = str(exc)
            return self._refused(404, "Not found", f"{said[:1].upper()}{said[1:]}.")
        html = self._pages.page("tasks", data, viewer, here=request.path, topic=shown.topic)
        return web.Response(text=html, content_type="text/html")

    async def _usage_csv(self, request: web.Request) -> web.StreamResponse:
        if await self._viewer(request) is None and not self._bearer(request):
            return self._refused(401, "Sign in", SIGNED_OUT)
        data = await self._views.usage()
        fields = ["day", "agent", "host", "provider", "model", "account", "requests"]
        fields += ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
        fields += ["tokens", "cost_usd"]
        return csv_download(data["rows"], fields, "fleetwarden-usage.csv")

    async def _changes_csv(self, request: web.Request) -> web.StreamResponse:
        if await self._viewer(request) is None and not self._bearer(request):
            return self._refused(401, "Sign in", SIGNED_OUT)
        data = await self._views.changes()
        return csv_download(data["rows"], CSV_FIELDS, "fleetwarden-changes.csv")

    # -- the API ---------------------------------------------------------------------------------

    def _api(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            if not self._bearer(request) and await self._viewer(request) is None:
                return _json({"error": "sign in, or send Authorization: Bearer TOKEN"}, 401)
            return _json(await self._data(name))

        return handle

    async def _api_agent(self, request: web.Request) -> web.StreamResponse:
        if not self._bearer(request) and await self._viewer(request) is None:
            return _json({"error": "sign in, or send Authorization: Bearer TOKEN"}, 401)
        name, entries = request.match_info["name"], _entries(request)
        if entries is None:
            return _json({"error": _BAD_ENTRIES}, 400)
        try:
            return _json(await self._agent(name, entries))
        except UnknownPage:
            return _json({"error": f"no agent is called {name!r}"}, 404)

    async def _api_tasks(self, request: web.Request) -> web.StreamResponse:
        if not self._bearer(request) and await self._viewer(request) is None:
            return _json({"error": "sign in, or send Authorization: Bearer TOKEN"}, 401)
        try:
            return _json(await self._views.board.page(task_filter(request.query)))
        except BadFilter as exc:
            return _json({"error": str(exc)}, 400)

    async def _api_messages(self, request: web.Request) -> web.StreamResponse:
        if not self._bearer(request) and await self._viewer(request) is None:
            return _json({"error": "sign in, or send Authorization: Bearer TOKEN"}, 401)
        try:
            agent, limit = message_query(request.query)
        except BadQuery as exc:
            return _json({"error": str(exc)}, 400)
        if agent is not None:
            try:
                await self._views.check_agent(agent)
            except UnknownPage:
                return _json({"error": f"no agent is called {agent!r}"}, 404)
        return _json(await self._views.messages.page(agent, limit))

    async def _scrape(self, request: web.Request) -> web.StreamResponse:
        if not self._bearer(request) and await self._viewer(request) is None:
            return web.Response(
                status=401,
                text="metrics need Authorization: Bearer TOKEN (the metrics token, see the "
                "config's dashboard: {metrics_token_env: ...}) or a signed-in session\n",
            )
        snapshot = prom.Snapshot(
            fleet=await self._views.fleet(),
            budgets=await self._views.budgets(),
            changes=await self._views.changes_ended(),
            tasks=await self._views.board.gauges(),
            messages=await self._views.messages.counts(),
        )
        body = await self._metrics.render(snapshot, self._views.usage_after)
        return web.Response(body=body, headers={"Content-Type": prom.CONTENT_TYPE})

    # -- live -------------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return web.Response(status=401, text="signed out\n")
        topic = request.query.get("topic", "")
        board = topic_filter(topic)
        if (
            topic not in _PAGES
            and board is None
            and not (topic.startswith("agent:") and _AGENT.fullmatch(topic[6:]))
        ):
            return web.Response(status=404, text="no such page\n")
        if board is not None:
            try:
                await self._views.board.page(board)
            except BadFilter:
                return web.Response(status=404, text="no such mission\n")
            topic = board.topic  # one topic for each board, however its query was spelled
        if topic.startswith("agent:"):
            try:
                await self._views.check_agent(topic[6:])
            except UnknownPage:
                return web.Response(status=404, text="no such agent\n")
        watcher = self.hub.watch(topic, viewer.session)
        if watcher is Full.SESSION:
            text = f"this browser has {MAX_PER_SESSION} live pages open, the most one may\n"
            return web.Response(status=429, text=text)
        if isinstance(watcher, Full):
            return web.Response(status=503, text="too many open dashboards\n")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 1000\nevent: hello\ndata: live\n\n")
            while True:
                html = await watcher.next(_STREAM_CHECK)
                if watcher.closed:  # the orchestrator stops: the browser reconnects later
                    break
                if not await self._still_signed_in(viewer):
                    await response.write(b"event: signedout\ndata: signed out\n\n")
                    break
                if html is not None:
                    await response.write(_sse("fragment", html))
                else:
                    await response.write(b": still here\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.leave(watcher)
        return response

    async def _still_signed_in(self, viewer: Viewer) -> bool:
        """The stream's session is live and its person's role unchanged. The hub's set of
        live sessions may predate a session just opened: one missing from it is asked of
        the ledger before the stream is ended."""
        if not self._signins.still_allowed(viewer):
            return False
        sessions = self.hub.live_sessions
        if sessions is None or viewer.session in sessions:
            return True
        return await self._signins.alive(viewer.session)

    # -- data --------------------------------------------------------------------------------------

    async def _data(self, name: str) -> Json:
        """Page ``name``'s data (one of :data:`_PAGES`: each is a method of the views)."""
        assert name in _PAGES
        read: Callable[[], Awaitable[Json]] = getattr(self._views, name)
        return await read()

    async def _agent(self, name: str, entries: int) -> Json:
        if not _AGENT.fullmatch(name):
            raise UnknownPage(f"no agent is called {name!r}")
        return await self._views.agent(name, entries)

    async def _render_topic(self, topic: str) -> str:
        if topic.startswith("agent:"):
            return self._pages.fragment("agent", await self._agent(topic[6:], TRANSCRIPT_ENTRIES))
        if (board := topic_filter(topic)) is not None:
            return self._pages.fragment("tasks", await self._views.board.page(board))
        return self._pages.fragment(topic, await self._data(topic))


def _entries(request: web.Request) -> int | None:
    """``?entries=N``: the default without it; ``None`` unless N is ASCII digits (a huge
    N is as good as the most the views read)."""
    text = request.query.get("entries", "")
    if not text:
        return TRANSCRIPT_ENTRIES
    if not _ENTRIES.fullmatch(text):
        return None
    return int(text) if len(text) <= 7 else 10**7


def _on_status_door(request: web.Request) -> bool:
    """Whether ``request`` came through the state dir's status socket."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family == socket.AF_UNIX


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def _sse(event: str, data: str) -> bytes:
    text = data.replace("\r\n", "\n").replace("\r", "\n")  # SSE ends a line at either
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {event}\n{lines}\n".encode()
