"""The heartbeat endpoint: where agents tell Fleetwarden they are alive, over loopback HTTP.

Each agent gets its own URL, ``http://127.0.0.1:PORT/heartbeat/<agent>``, and its own random
token, sent in the ``X-Fleetwarden-Token`` header. An optional JSON body
``{"state": "working" | "waiting"}`` tells an agent waiting for input from a stalled one;
every accepted beat is handed to the ``on_beat`` callback as ``(agent, kind)`` with kind
``working``, ``waiting`` or ``beat`` (no state given). Answers:

    204  beat accepted (``on_beat`` has returned)
    400  a body other than ``{"state": "working" | "waiting"}``
    403  unknown agent or wrong token, with no detail
    408  a body not all there within ``body_timeout`` seconds
    413  a body over 4 KiB
    500  ``on_beat`` failed
    503  the agent has 16 beats in flight already, or (sent as the connection opens,
         then closed) the endpoint holds all the connections it takes, none of them idle,
         or its token was loaded at start and the start has not yet said its run goes
         on ("Fleetwarden is starting: try again", at every door on the endpoint)

A new connection must send its beat's headers within ``idle_timeout`` seconds
(:mod:`fleet.connections.admission`); a kept-alive one, its next beat's within
``header_timeout`` of the last answer (an agent's beats may share one connection).

With an :class:`~fleet.approvals.ask_door.AskDoor`, the same port and tokens also serve
``/approval/<agent>``: where a CLI's hook or plugin asks the operator and waits for the
answer (:mod:`fleet.approvals.ask_door`).

With a :class:`~fleet.repos.door.server.GitDoor`, ``/git/<agent>/<repo>.git/…`` serves each agent's
line repo over smart HTTP, the token as the Basic password (:mod:`fleet.repos.door.server`).

``POST /ask/<agent>`` (same token) is where a CLI's blocking permission hook asks the
operator (:mod:`fleet.sessions.hook_asks`): the reply, once decided, is the hook's JSON
answer. Without an ``on_ask`` callback every ask is answered no, at once.

A token lives as long as its agent's run: issued for the launch (a new one when the agent
holds none), revoked when the run ends (:class:`~fleet.runs.keeper.RunKeeper`), and at
start every token of an agent whose run is over is revoked, so a token a run leaked is
refused afterwards at every door on the endpoint — the beats, the asks, the git door, the
forge door, the peer door and any door mounted later, which all check a token through
:meth:`~fleet.connections.loopback.AgentSecrets.matches`.

Tokens and the port persist in ``<state_dir>/heartbeat.json`` (mode 0600, replaced
atomically): ``{"version": 1, "port": 41234, "tokens": {"coder-1": "..."}}`` (and an agent's
last tokens revoked under ``retired``: still redacted, a beat with one refused as a run's
that is over). A restarted Fleetwarden binds the same port again and accepts the tokens of
the runs still going, so agents that kept running keep their URL and their token. Tokens
are secrets: they are never logged.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

from aiohttp import web

from fleet.approvals.ask_door import AskDoor
from fleet.capped_body import OverCap, read_capped
from fleet.connections.admission import Admission, refusal
from fleet.connections.limits import Limits
from fleet.connections.loopback import HOST, AgentSecrets, Served, serve
from fleet.connections.token import TOKEN_HEADER
from fleet.hostile_json import JsonRefused, read_object
from fleet.names import AgentName, agent_name, is_agent_name
from fleet.redaction.known import Secret
from fleet.repos.door.server import PREFIX as GIT_PREFIX
from fleet.repos.door.server import GitDoor, git_agent

log = logging.getLogger(__name__)

STATE_FILE: Final = "heartbeat.json"
MAX_BODY: Final = 4096
MAX_ASK: Final = 1024 * 1024  # an ask carries the tool's input: a whole file, for a Write
MAX_PER_AGENT: Final = 16  # beats of one agent in flight at once
MAX_CONNECTIONS: Final = 4096
"""Connections held at once (fewer when the open-file limit leaves less): an agent keeps
its beats' connection open between beats, so a fleet of a thousand holds a thousand."""
_MAX_WARNED: Final = 256  # names remembered for log-once; a scanner must not grow it forever
_UNKNOWN: Final = "an unknown agent"  # log key for names we refuse to echo into logs
# A request's key for the agent whose token it bears, once checked.
_CHECKED: Final = web.RequestKey("fleetwarden.agent", str)


class BeatKind(enum.StrEnum):
    WORKING = "working"
    WAITING = "waiting"  # idle, waiting for input: alive, not stalled
    BEAT = "beat"  # alive, no state given


OnBeat = Callable[[str, str], Awaitable[None]]  # (agent, kind) -> None
OnAsk = Callable[[str, bytes], Awaitable[bytes]]  # (agent, the hook's JSON) -> its answer
NO_ASKS = (
    b'{"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": '
    b'{"behavior": "deny", "message": "this Fleetwarden takes no approvals"}}}'
)


class HeartbeatState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


def parse_beat(body: bytes) -> BeatKind | None:
    """The kind of beat a request body announces; ``None`` for a malformed body."""
    if not body.strip():
        return BeatKind.BEAT
    try:
        data = read_object(body)
    except JsonRefused:
        return None
    state = data.get("state")
    if state is None:
        return BeatKind.BEAT
    if state in (BeatKind.WORKING, BeatKind.WAITING):
        return BeatKind(state)
    return None


class Door(Protocol):
    """Another door on the endpoint (the forge door): routes checked against the agents'
    heartbeat tokens, with ``secrets.matches`` — which refuses a token whose run is over."""

    def mount(self, app: web.Application, secrets: AgentSecrets) -> None: ...


class HeartbeatServer:
    """The heartbeat endpoint on 127.0.0.1. ``port`` 0 reuses the port saved in the state
    file, or picks a free one; a port that is taken is replaced by a free one, with a
    warning."""

    def __init__(
        self,
        state_dir: Path,
        on_beat: OnBeat,
        *,
        port: int = 0,
        header_timeout: float = 10.0,
        body_timeout: float = 5.0,
        idle_timeout: float = 5.0,
        asks: AskDoor | None = None,
        gits: GitDoor | None = None,
        doors: Sequence[Door] = (),
        hook_asks: Callable[[], OnAsk | None] = lambda: None,
    ) -> None:
        """``hook_asks``: what answers the asks of agents' permission hooks, once there is
        one (the fleet's live sessions, made after the endpoint)."""
        if not 0 <= port <= 65535:
            raise ValueError(f"heartbeat port must be 0-65535, not {port}")
        # A token loaded at start is refused (503) until the sweep says its run goes on.
        self._secrets = AgentSecrets(state_dir / STATE_FILE, "heartbeat", confirm=True)
        self._on_beat = on_beat
        self._asks = asks
        self._gits = gits
        self._doors = tuple(doors)
        self._hook_asks = hook_asks
        self._on_ask: OnAsk | None = None
        self._wanted_port = port
        self._limits = Limits(
            header_timeout,
            max_header_line=2048,
            max_headers=32,
            idle_timeout=idle_timeout,
            max_connections=MAX_CONNECTIONS,
            max_per_agent=MAX_PER_AGENT,
        )
        self._body_timeout = body_timeout
        self._warned: set[str] = set()
        self._served: Served | None = None
        self._port: int | None = None
        self._state = HeartbeatState.NEW

    def take_asks(self, on_ask: OnAsk) -> None:
        """Have ``on_ask`` answer the asks of agents' permission hooks."""
        self._on_ask = on_ask

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def state(self) -> HeartbeatState:
        return self._state

    @property
    def port(self) -> int:
        """The port listened on (once started)."""
        if self._port is None:
            raise RuntimeError("HeartbeatServer is not started")
        return self._port

    @property
    def connection(self) -> Callable[[], asyncio.Protocol]:
        """A new connection's protocol, within this endpoint's caps (once started): what
        a sandbox door to its port serves in place."""
        if self._served is None:
            raise RuntimeError("HeartbeatServer is not started")
        return self._served.factory

    @property
    def path(self) -> Path:
        """The state file holding the port and the tokens."""
        return self._secrets.path

    async def start(self) -> None:
        """Load the saved tokens and listen, on the saved port when it is free."""
        if self._state is not HeartbeatState.NEW:
            raise RuntimeError(f"HeartbeatServer.start() called in state {self._state.value}")
        app = web.Application(client_max_size=MAX_ASK)
        app.router.add_post("/heartbeat/{agent}", self._handle)
        app.router.add_post("/ask/{agent}", self._handle)
        if self._asks is not None:
            self._asks.mount(app, self._secrets)
        if self._gits is not None:
            self._gits.mount(app, self._secrets)
        for door in self._doors:
            door.mount(app, self._secrets)
        self._served = await serve(
            app,
            self._secrets,
            wanted_port=self._wanted_port,
            what="heartbeat endpoint",
            shutdown_timeout=1.0,
            limits=self._limits,
            who=self._whose,
            busy=_busy,
            refusal=refusal(b"", "text/plain"),
        )
        self._port = self._served.port
        self._state = HeartbeatState.RUNNING
        log.info("heartbeat endpoint listening on http://%s:%d", HOST, self._port)

    async def stop(self) -> None:
        """Stop listening. The tokens stay on disk for the next start."""
        if self._state is HeartbeatState.RUNNING and self._served is not None:
            await self._served.close()
            self._served = None
        self._state = HeartbeatState.STOPPED

    # -- tokens and URLs ---------------------------------------------------------------

    def url_for(self, agent: str) -> str:
        """Where ``agent`` posts its heartbeats."""
        return f"http://{HOST}:{self.port}/heartbeat/{agent_name(agent)}"

    def token_for(self, agent: str) -> str:
        """The token of ``agent``'s run: the one its run (or its launch under way) has, or a
        new one — a run that ended took its token with it — saved before it is given."""
        name = self._loaded(agent)
        if self._secrets.get(name) is None:
            self._warned.discard(name)
        return self._secrets.issue(name)

    def revoke(self, agent: str) -> bool:
        """Forget ``agent``'s token (its run ended), so every door refuses it from now on;
        whether it had one."""
        return self._secrets.revoke(self._loaded(agent))

    def keep_only(
        self, agents: Iterable[str], *, known: Iterable[str] | None = None
    ) -> list[AgentName]:
        """Revoke the token of every agent but ``agents`` (those whose runs go on), and
        accept theirs from now on; the agents whose tokens were revoked. ``known``: the
        agents there still are (the retired tokens of others are forgotten)."""
        if self._state is HeartbeatState.NEW:
            raise RuntimeError("HeartbeatServer tokens are loaded by start(); call it first")
        return self._secrets.keep_only(agents, known=known)

    def known_secrets(self) -> list[Secret]:
        """Every agent's token, and its last ones revoked, for the redactor."""
        return [Secret(token, "heartbeat token") for token in self._secrets.values()]

    @property
    def secrets(self) -> AgentSecrets:
        """The agents' tokens (and the digests of those another orchestrator gave out)."""
        return self._secrets

    def _loaded(self, agent: str) -> AgentName:
        name = agent_name(agent)
        if self._state is HeartbeatState.NEW:
            raise RuntimeError("HeartbeatServer tokens are loaded by start(); call it first")
        return name

    # -- requests ----------------------------------------------------------------------

    @property
    def admission(self) -> Admission:
        """The connection caps in force (once started)."""
        if self._served is None:
            raise RuntimeError("HeartbeatServer is not started")
        return self._served.admission

    def _whose(self, request: web.Request) -> str | None:
        """The agent a beat is from, when its token is right: its beats count against its
        own cap of requests at once."""
        if request.path.startswith(GIT_PREFIX):
            return git_agent(request, self._secrets)  # the token is the Basic password
        raw_name = request.match_info.get("agent", "")
        agent = self._secrets.matches(raw_name, request.headers.get(TOKEN_HEADER))
        if agent is not None:
            request[_CHECKED] = agent  # the handler need not check the token again
        return agent

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_name = request.match_info["agent"]
        checked = request.get(_CHECKED)
        agent = AgentName(checked) if checked is not None else None
        if agent is None:
            agent = self._secrets.matches(raw_name, request.headers.get(TOKEN_HEADER))
        if agent is None:
            self._refused(raw_name, request.headers.get(TOKEN_HEADER))
            return web.Response(status=403)
        asking = request.path.startswith("/ask/")
        cap = MAX_ASK if asking else MAX_BODY
        try:
            body = await read_capped(request, cap, within=self._body_timeout)
        except OverCap:
            return web.Response(status=413)
        except TimeoutError:
            return web.Response(status=408)
        if asking:
            return await self._ask(agent, body)
        kind = parse_beat(body)
        if kind is None:
            self._warn_once(
                agent, "refused a heartbeat of %s: %s", 'body is not {"state": "working"|"waiting"}'
            )
            return web.Response(status=400)
        try:
            await self._on_beat(agent, kind.value)
        except Exception:
            log.exception("the heartbeat of %s could not be recorded", agent)
            return web.Response(status=500)
        self._warned.discard(agent)  # a later problem is worth a new warning
        return web.Response(status=204)

    def _refused(self, raw_name: str, given: str | None) -> None:
        """Log (once per agent) why a beat's token was refused."""
        named_agent = AgentName(raw_name) if is_agent_name(raw_name) else None
        stale = named_agent is not None and self._secrets.revoked(named_agent, given)
        known = named_agent is not None and self._secrets.knows(named_agent)
        # Only a name Fleetwarden gave out is logged: any other is the sender's text.
        named = named_agent if (known or stale) and named_agent is not None else _UNKNOWN
        why = "wrong token" if known else "unknown agent"
        if stale:
            why = "the token of a run that is over (revoked when it ended)"
        self._warn_once(named, "refused a heartbeat for %s: %s", why)

    async def _ask(self, agent: AgentName, body: bytes) -> web.StreamResponse:
        """Answer a permission hook's ask once it is decided (400: not an ask)."""
        on_ask = self._on_ask or self._hook_asks()
        if on_ask is None:
            return web.Response(body=NO_ASKS, content_type="application/json")
        try:
            answer = await on_ask(agent, body)
        except ValueError as exc:  # fleet.sessions.hook_asks.BadAsk
            log.warning("refused an ask of %s: %s", agent, exc)
            return web.Response(status=400)
        except Exception:
            log.exception("the ask of %s could not be answered", agent)
            return web.Response(status=500)
        return web.Response(body=answer, content_type="application/json")

    def _warn_once(self, key: str, message: str, why: str) -> None:
        if key in self._warned or len(self._warned) >= _MAX_WARNED:
            log.debug(message, key, why)
            return
        self._warned.add(key)
        log.warning(message, key, why)


def _busy(request: web.Request, agent: str, held: int) -> web.StreamResponse:
    """A beat past its agent's cap of beats at once."""
    return web.Response(status=503, headers={"Retry-After": "1"})
