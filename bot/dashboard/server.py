"""The dashboard's HTTP server, on the project's aiohttp: pages, their ``/api`` twins, live
updates (``/events``, server-sent events), ``/usage.csv`` and ``/metrics``.

Read-only by construction: the only routes that are not ``GET`` are ``POST /signin``
(a link's button: using a link only by ``GET`` would let a chat service's link preview
spend it) and ``POST /signout``. Who may see what:

- pages and ``/events``: a session cookie (:mod:`bot.dashboard.signin`), its person's role
  checked again on every request and every few seconds of a stream;
- ``/api/...``: the same cookie, or ``Authorization: Bearer`` with the metrics token (the
  config's ``metrics_token_env``) or the status token ``fleetwarden status`` reads from the
  state dir;
- ``/metrics``: the metrics token; without one configured, loopback clients only (and only
  when no reverse proxy stands in front: the public URL is on loopback, and the request
  carries no ``Forwarded`` header).

Every answer carries a CSP without inline script, no framing and no referrer.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import ipaddress
import json
import logging
import re
import secrets
import ssl
from collections.abc import Awaitable, Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.dashboard import metrics as prom
from bot.dashboard.live import LiveHub
from bot.dashboard.pages import Pages
from bot.dashboard.settings import DashboardSettings
from bot.dashboard.shapes import Json
from bot.dashboard.signin import LINK_PATH, SESSION_LIFETIME, SignIns, Viewer
from bot.dashboard.views import TRANSCRIPT_ENTRIES, UnknownPage, Views
from fleet.errors import FleetwardenError
from fleet.private_files import write_private
from fleet.status import FleetEvent

log = logging.getLogger(__name__)

STATUS_TOKEN_FILE = "dashboard-status-token"
"""In the state dir, mode 0600: the bearer token ``fleetwarden status`` sends."""
_PAGES = ("fleet", "budgets", "usage", "accounts", "hosts", "approvals", "audit")
_AGENT = re.compile(r"[a-z][a-z0-9-]{0,62}")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_STREAM_CHECK = 5.0  # seconds between two checks of an open stream's session
_SIGNED_OUT = "Sign in from chat: say `dashboard` to Fleetwarden, and it sends you a link."
_INVALID_LINK = "This link is no longer valid — ask the bot for a new one (say `dashboard`)."


class DashboardUnavailable(FleetwardenError):
    """The dashboard could not listen (the port taken, the certificate unreadable)."""


def status_token(state_dir: Path) -> str:
    """The status token, made (0600) on first use."""
    path = state_dir / STATUS_TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        write_private(path, token + "\n")
        return token


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
    ) -> None:
        self.settings = settings
        self._views = views
        self._signins = signins
        self._metrics = metrics
        self._pages = Pages()
        self._metrics_token = (
            environ.get(settings.metrics_token_env) or None if settings.metrics_token_env else None
        )
        self._status_token = status_token(state_dir)
        self.hub = LiveHub(self._render_topic, signins.live)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._cookie = "__Host-fw_session" if settings.secure_cookies else "fw_session"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._headers])
        static = Path(str(files("bot.dashboard") / "static"))
        app.add_routes(
            [
                web.get("/", self._page("fleet")),
                *(web.get(f"/{name}", self._page(name)) for name in _PAGES[1:]),
                web.get("/agents/{name}", self._agent_page),
                web.get("/usage.csv", self._usage_csv),
                web.get("/api/fleet", self._api("fleet")),
                *(web.get(f"/api/{name}", self._api(name)) for name in _PAGES[1:]),
                web.get("/api/agents/{name}", self._api_agent),
                web.get("/events", self._events),
                web.get("/metrics", self._scrape),
                web.get(LINK_PATH + "{secret}", self._link),
                web.post("/signin", self._signin),
                web.post("/signout", self._signout),
                web.static("/static", static, show_index=False, follow_symlinks=False),
            ]
        )
        # Open streams end as the hub stops; a request still running after 2 s is cut.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        where = f"{self.settings.host}:{self.settings.port}"
        tls = None
        try:
            if self.settings.tls is not None:
                tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                tls.load_cert_chain(*self.settings.tls)
        except OSError as exc:  # ssl.SSLError too
            await runner.cleanup()
            raise DashboardUnavailable(
                f"the dashboard cannot load its tls_cert and tls_key: {exc.strerror or exc}; "
                "point them at a readable PEM certificate chain and its key"
            ) from None
        site = web.TCPSite(runner, self.settings.host, self.settings.port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise DashboardUnavailable(
                f"the dashboard cannot listen on {where}: {exc.strerror or exc}; set another "
                "port in the config's `dashboard: {listen: ...}`"
            ) from None
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("dashboard listening on %s:%s", self.settings.host, self.port)

    async def stop(self) -> None:
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """An agent started, ended or stalled: its page and the fleet's are rendered now."""
        self.hub.poke("fleet")
        self.hub.poke(f"agent:{event.agent}")

    # -- headers and who asks ------------------------------------------------------------------

    @web.middleware
    async def _headers(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        headers = response.headers
        headers.setdefault("Content-Security-Policy", _CSP)
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Cross-Origin-Resource-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "no-store")
        if self.settings.secure_cookies:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if isinstance(response, web.HTTPException):
            raise response
        return response

    async def _viewer(self, request: web.Request) -> Viewer | None:
        cookie = request.cookies.get(self._cookie)
        return await self._signins.check(cookie) if cookie else None

    def _bearer(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        given = header[len("Bearer ") :].strip().encode()
        tokens = [t for t in (self._metrics_token, self._status_token) if t]
        return any(hmac.compare_digest(given, t.encode()) for t in tokens)

    def _local(self, request: web.Request) -> bool:
        """A client on this machine, with no reverse proxy between (see the module doc)."""
        if not self.settings.local_only:
            return False
        if "Forwarded" in request.headers or "X-Forwarded-For" in request.headers:
            return False
        try:
            return ipaddress.ip_address(request.remote or "").is_loopback
        except ValueError:
            return False

    def _refused(self, status: int, title: str, text: str) -> web.Response:
        return web.Response(
            status=status, text=self._pages.message(title, text), content_type="text/html"
        )

    # -- pages ----------------------------------------------------------------------------------

    def _page(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            viewer = await self._viewer(request)
            if viewer is None:
                return self._refused(401, "Sign in", _SIGNED_OUT)
            data = await self._data(name)
            html = self._pages.page(name, data, viewer, here=request.path, topic=name)
            return web.Response(text=html, content_type="text/html")

        return handle

    async def _agent_page(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._refused(401, "Sign in", _SIGNED_OUT)
        name, entries = request.match_info["name"], _entries(request)
        try:
            data = await self._agent(name, entries)
        except UnknownPage:
            return self._refused(404, "Not found", f"No agent is called {name!r}.")
        topic = f"agent:{name}" if entries == TRANSCRIPT_ENTRIES else ""  # older: not live
        html = self._pages.page("agent", data, viewer, here=request.path, topic=topic)
        return web.Response(text=html, content_type="text/html")

    async def _usage_csv(self, request: web.Request) -> web.StreamResponse:
        if await self._viewer(request) is None and not self._bearer(request):
            return self._refused(401, "Sign in", _SIGNED_OUT)
        data = await self._views.usage()
        out = io.StringIO()
        fields = ["day", "agent", "host", "provider", "model", "account", "requests"]
        fields += ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
        fields += ["tokens", "cost_usd"]
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in data["rows"]:
            writer.writerow({k: _csv_safe(v) for k, v in row.items()})
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="fleetwarden-usage.csv"'},
        )

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
        name = request.match_info["name"]
        try:
            return _json(await self._agent(name, _entries(request)))
        except UnknownPage:
            return _json({"error": f"no agent is called {name!r}"}, 404)

    async def _scrape(self, request: web.Request) -> web.StreamResponse:
        allowed = self._bearer(request) if self._metrics_token else self._local(request)
        if not allowed:
            return web.Response(status=401, text="metrics need a bearer token\n")
        snapshot = prom.Snapshot(
            fleet=await self._views.fleet(), budgets=await self._views.budgets()
        )
        body = await self._metrics.render(snapshot, self._views.usage_after)
        return web.Response(body=body, headers={"Content-Type": prom.CONTENT_TYPE})

    # -- live -------------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return web.Response(status=401, text="signed out\n")
        topic = request.query.get("topic", "")
        if topic not in _PAGES and not (topic.startswith("agent:") and _AGENT.fullmatch(topic[6:])):
            return web.Response(status=404, text="no such page\n")
        if topic.startswith("agent:"):
            try:
                await self._views.check_agent(topic[6:])
            except UnknownPage:
                return web.Response(status=404, text="no such agent\n")
        watcher = self.hub.watch(topic)
        if watcher is None:
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

    # -- signing in and out ------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        """A link's page: one button that uses it (a GET never does)."""
        secret = request.match_info["secret"]
        return web.Response(
            text=self._pages.message(
                "Sign in to Fleetwarden",
                "This one-time link signs this browser in with your chat role.",
                form_action="/signin",
                form_value=secret,
            ),
            content_type="text/html",
        )

    async def _signin(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            return self._refused(403, "Refused", "A sign-in must come from this dashboard's page.")
        form = await request.post()
        link = form.get("link")
        used = await self._signins.redeem(link) if isinstance(link, str) else None
        if used is None:
            return self._refused(403, "Link not valid", _INVALID_LINK)
        cookie, viewer = used
        log.info("dashboard: %s signed in as %s", viewer.who, viewer.role.value)
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            self._cookie,
            cookie,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
            httponly=True,
            secure=self.settings.secure_cookies,
            samesite="Strict",
        )
        return response

    async def _signout(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            return self._refused(403, "Refused", "A sign-out must come from this dashboard.")
        viewer = await self._viewer(request)
        if viewer is not None:
            await self._signins.end(viewer)
        response = self._refused(200, "Signed out", _SIGNED_OUT)
        response.del_cookie(self._cookie, path="/")
        return response

    def _same_origin(self, request: web.Request) -> bool:
        """Whether a form post comes from this dashboard's own page. Browsers say so in
        ``Sec-Fetch-Site``; with ``no-referrer`` they send ``Origin: null``, so an Origin is
        only compared when it names one."""
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            return True
        return origin in (self.settings.public_url, f"{request.scheme}://{request.host}")

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
        return self._pages.fragment(topic, await self._data(topic))


def _entries(request: web.Request) -> int:
    text = request.query.get("entries", "")
    return int(text) if text.isdigit() and len(text) < 6 else TRANSCRIPT_ENTRIES


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


def _csv_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (an agent's name cannot start with
    one, but a model name comes from a provider)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
