"""How the dashboard meets the machine it runs on: its sockets within connection caps and
header deadlines, the ``Host`` names it answers to, and the headers every answer carries,
errors included.

- Connections (:mod:`fleet.connections.admission`, as at the metering proxy): at most
  :data:`LIMITS`' ``max_connections``, fewer when the open-file limit leaves less (a sixth
  of the descriptors past the reserve, :mod:`fleet.connections.openfiles`), and :func:`per_peer_cap`
  from one peer: on this machine one local user, whatever address it connects from (the
  kernel says whose each socket is), else one address. At a cap a new connection closes
  an idle one (one that never sent a request first); only when every one is busy is it
  refused. A new connection has ``idle_timeout`` seconds to send its first request's
  headers (a TLS handshake included), a kept-alive one ``header_timeout`` after each
  answer. A local user holding connections, idle or kept busy, takes neither the
  process's descriptors nor the dashboard from anyone.
- ``Host``: a request on the port is answered only when it names an address the dashboard
  is reached at (:func:`allowed_hosts`), else a 421 says which. A web page on a name whose
  DNS is pointed at this machine (DNS rebinding) is, for the browser, of that name: its
  requests reach the port, but they say that name. (The state dir's Unix socket is
  reached by no browser: its requests are not asked.)
- Headers: a CSP without inline script, no framing, no referrer, ``nosniff``, on every
  answer: the routes', aiohttp's own 404 and 405, a 500 for a failing handler (its
  traceback logged, never sent), and aiohttp's 400 for a request it could not read (which
  quotes nothing of the request).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler

from bot.config.dashboard import DashboardSettings
from fleet.connections import openfiles, socket_owner
from fleet.connections.admission import Admission, refusal
from fleet.connections.limits import Limits
from fleet.errors import FleetwardenError
from fleet.forge.events.endpoint import PREFIX as WEBHOOK_PREFIX

log = logging.getLogger(__name__)

LIMITS: Final = Limits(
    header_timeout=10.0,
    max_header_line=8190,
    max_headers=64,
    idle_timeout=5.0,
    max_connections=1024,
    fd_share=1 / 6,  # the metering proxy has two thirds, the heartbeat endpoint a sixth
    fds_each=1,
)
MAX_PER_PEER: Final = 256
"""Connections from one peer at once: one local user, or one address (an IPv6 /64) of another
machine. A browser opens six to a site; every client behind a reverse proxy on this machine
comes as the proxy's user, so it is generous."""
PEER_SHARE: Final = 4
"""One peer holds a quarter of the connections at most, whatever the open-file limit leaves:
a local user keeping all of its own busy leaves the rest to everyone else."""
LINGER: Final = 2.0  # seconds an unread request body is drained before closing
_BACKLOG: Final = 512  # connections the kernel queues before they are accepted
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_FAILED = "Something went wrong on the dashboard's side; the orchestrator's log says what.\n"
_UNREADABLE = "Bad request: it could not be read as HTTP.\n"
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]]+)(?::([0-9]{1,5}))?")
_ANY_ADDRESS = ("0.0.0.0", "::")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DashboardUnavailable(FleetwardenError):
    """The dashboard could not listen (the port taken, the certificate unreadable)."""


# -- Host ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hosts:
    """What a request's ``Host`` may say: ``name`` with any port or none, or one of
    ``addresses`` (``host:port``) as it is."""

    name: str | None
    addresses: frozenset[str]


def allowed_hosts(settings: DashboardSettings) -> Hosts:
    """The ``Host`` values the dashboard answers: ``public_url``'s host, with any port or
    none (a reverse proxy may drop it, a tunnel may change it: the name is what a rebinding
    page cannot have), and its ``listen`` address with its port."""
    default = 443 if settings.tls else 80
    shown = _shown(settings.host)
    addresses = {f"{shown}:{settings.port}"} | ({shown} if settings.port == default else set())
    name = urlsplit(settings.public_url).hostname
    return Hosts(_shown(name) if name else None, frozenset(addresses))


def _shown(host: str) -> str:
    host = host.lower().rstrip(".")
    return f"[{host}]" if ":" in host else host


def host_allowed(settings: DashboardSettings, hosts: Hosts, header: str | None) -> bool:
    """Whether a request saying ``Host: header`` is for this dashboard. Listening on every
    address (``0.0.0.0``, ``::``), any IP address with the port is too: an address cannot
    be rebound, and the machine's addresses are not known in advance."""
    if header is None:
        return False
    found = _HOST.fullmatch(header.strip().lower())
    if found is None:
        return False
    name, port = found.group(1).rstrip("."), found.group(2)
    if name == hosts.name or (f"{name}:{port}" if port else name) in hosts.addresses:
        return True
    if settings.host not in _ANY_ADDRESS or port is None or int(port) != settings.port:
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def on_unix_socket(request: web.Request) -> bool:
    """Whether ``request`` came on a Unix socket (the state dir's, not the TCP port)."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family == socket.AF_UNIX


def misdirected(settings: DashboardSettings) -> web.Response:
    """The answer to a request naming another host (a 421). The dashboard's own name on
    this machine is never said: it is what keeps its session cookie from other local
    ports, and whoever asks by a wrong name (an agent, a rebound page) must not learn it."""
    if settings.own_name is not None:
        where = (
            "Open the link Fleetwarden sends you in chat (say `dashboard`): it names the "
            "address this dashboard answers at."
        )
    else:
        where = (
            f"Open {settings.public_url}; if you reach the dashboard by another name, set "
            "it as the config's `dashboard: {public_url: ...}`."
        )
    return web.Response(
        status=421,
        text=f"This dashboard does not answer at the name this request was sent to. {where}\n",
    )


# -- headers ----------------------------------------------------------------------------------


def secure(headers: MutableMapping[str, str], *, path: str, hsts: bool) -> None:
    """The strict headers, on one answer (a CSP the answer set itself is kept)."""
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000"


WEBHOOKS: Final = WEBHOOK_PREFIX
"""Where forges deliver their events (:mod:`fleet.forge.events.endpoint`)."""


def middleware(settings: DashboardSettings) -> Middleware:
    """Refuses other hosts, turns a failing handler into a plain 500, and puts the headers
    on every answer, aiohttp's own errors (404, 405) included."""
    hosts = allowed_hosts(settings)
    hsts = settings.secure_cookies

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        response: web.StreamResponse
        # No browser reaches a unix socket; a forge's webhook is signed, and comes by
        # whatever name the forge was given: neither has a name to check.
        unchecked = on_unix_socket(request) or request.path.startswith(WEBHOOKS)
        if not unchecked and not host_allowed(settings, hosts, request.headers.get("Host")):
            response = misdirected(settings)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                secure(exc.headers, path=request.path, hsts=hsts)
                raise
            except ConnectionError:
                raise  # the client went away: nothing to answer
            except Exception:
                if request.transport is None:  # gone mid-body (aiohttp's RuntimeError)
                    raise ConnectionResetError("the client went away") from None
                # The route's pattern, not the path: a sign-in link's path is its secret.
                log.exception("dashboard: answering %s failed", _route(request))
                response = web.Response(status=500, text=_FAILED)
        secure(response.headers, path=request.path, hsts=hsts)
        if isinstance(response, web.HTTPException):
            raise response  # a handler's redirect: aiohttp takes them raised
        return response

    return guard


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "a request"


class _Connection(RequestHandler):
    """aiohttp's handler of one connection. Its own answers (a request it could not read,
    a timeout) carry the headers too, quote nothing of the request, and are not logged
    with it: anyone who reaches the port could write anything there."""

    def __init__(self, hsts: bool, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hsts = hsts

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        text = _UNREADABLE if status < 500 else _FAILED
        response = super().handle_error(request, status, exc, text)
        if isinstance(response, web.Response):  # a 500's own text may quote a traceback
            response.text = text
            response.content_type = "text/plain"
        secure(response.headers, path="", hsts=self._hsts)
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        what = type(error).__name__ if isinstance(error, BaseException) else "no exception"
        if isinstance(error, HttpProcessingError):  # anyone may send one: not worth a line
            log.debug("dashboard: a request could not be read (%s)", what)
        elif isinstance(error, ConnectionError):  # anyone may hang up mid-request, too
            log.debug("dashboard: a client went away (%s)", what)
        else:  # the type only: its message may quote the request
            log.warning("dashboard: a connection failed (%s)", what)


# -- listening ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Listening:
    """The dashboard's sockets, its runner and its admission."""

    runner: web.AppRunner
    listeners: list[asyncio.AbstractServer]
    port: int
    admission: Admission

    async def close(self) -> None:
        for listener in self.listeners:
            listener.close()
        await self.runner.cleanup()


async def listen(app: web.Application, settings: DashboardSettings) -> Listening:
    """Serve ``app`` on ``settings``' address (TLS when it has a certificate), within
    :data:`LIMITS` and :data:`MAX_PER_PEER`; :class:`DashboardUnavailable` says why not."""
    where = f"{settings.host}:{settings.port}"
    tls = _tls(settings)
    cap = LIMITS.connection_cap(openfiles.current().soft)
    admission = Admission(
        "dashboard",
        max_connections=cap,
        max_per_agent=LIMITS.max_per_agent,
        idle_timeout=LIMITS.idle_timeout,
        refusal=refusal(b"Too many connections to the dashboard; try again.\n", "text/plain"),
        max_per_peer=per_peer_cap(cap),
    )
    app.middlewares.insert(0, admission.middleware)
    options: dict[str, Any] = {
        # A connection still waiting for a request's headers this long after its last
        # answer is closed (a new one is closed sooner, by admission).
        "keepalive_timeout": LIMITS.header_timeout,
        "max_line_size": LIMITS.max_header_line,
        "max_field_size": LIMITS.max_header_line,
        "max_headers": LIMITS.max_headers,
        # A body left unread (a form post cut off, a GET sent with one) is read and
        # dropped this long before the connection closes, not aiohttp's 10 s.
        "lingering_time": LINGER,
    }
    # Open streams end as the hub stops; a request still running after 2 s is cut.
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=2.0, **options
    )
    await runner.setup()
    listeners: list[asyncio.AbstractServer] = []
    socks: list[socket.socket] = []
    try:
        server = runner.server
        if server is None:
            raise RuntimeError("aiohttp's runner has no server after setup()")
        loop = asyncio.get_running_loop()

        def connection() -> RequestHandler:
            # No access log: a sign-in link's path is its secret (``/signin/<secret>``).
            return _Connection(
                settings.secure_cookies, server, loop=loop, access_log=None, **options
            )

        factory = admission.factory(connection)
        socks += _sockets(settings.host, settings.port)
        for sock in socks:
            # asyncio accepts up to its backlog at once, before admission sees any: a small
            # one bounds that burst; the kernel's queue is then made long again.
            listeners.append(
                await loop.create_server(
                    factory, sock=sock, backlog=openfiles.ACCEPT_BURST, ssl=tls
                )
            )
            sock.listen(_BACKLOG)
    except OSError as exc:
        await _unwind(runner, listeners, socks)
        raise DashboardUnavailable(
            f"the dashboard cannot listen on {where}: {exc.strerror or exc}; set another "
            "port in the config's `dashboard: {listen: ...}`"
        ) from None
    except BaseException:
        await _unwind(runner, listeners, socks)
        raise
    port: int = socks[0].getsockname()[1]
    log.info(
        "dashboard listening on %s:%s; up to %d connections, %d from one local user or "
        "address; a new connection has %g s to send a request",
        settings.host,
        port,
        admission.max_connections,
        admission.max_per_peer,
        LIMITS.idle_timeout,
    )
    if not socket_owner.available():
        log.warning(
            "dashboard: this kernel does not say which local user holds a connection "
            "(sock_diag, the netlink interface `ss` reads): connections are capped per "
            "address only, and a local user connecting from many loopback addresses can "
            "take them all; load the kernel's tcp_diag module (`modprobe tcp_diag`)"
        )
    return Listening(runner, listeners, port, admission)


def per_peer_cap(cap: int) -> int:
    """Connections one peer may hold when the dashboard holds ``cap``: :data:`MAX_PER_PEER`,
    and at most a :data:`PEER_SHARE` of ``cap``."""
    return max(min(MAX_PER_PEER, cap // PEER_SHARE), 1)


async def _unwind(
    runner: web.AppRunner, listeners: list[asyncio.AbstractServer], socks: list[socket.socket]
) -> None:
    for listener in listeners:
        listener.close()
    for sock in socks:
        sock.close()
    await runner.cleanup()


def _tls(settings: DashboardSettings) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*settings.tls)
    except OSError as exc:  # ssl.SSLError too
        raise DashboardUnavailable(
            f"the dashboard cannot load its tls_cert and tls_key: {exc.strerror or exc}; "
            "point them at a readable PEM certificate chain and its key"
        ) from None
    return context


def _sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to ``host`` (an address, or ``localhost``: each of its addresses) and
    ``port``; not yet listening. Python sockets are not inherited by child processes, so
    agents never hold the port."""
    found = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
    )
    made: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            made.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except BaseException:
        for sock in made:
            sock.close()
        raise
    return made
