"""The heartbeat endpoint: where agents tell Fleetwarden they are alive, over loopback HTTP.

Each agent gets its own URL, ``http://127.0.0.1:PORT/heartbeat/<agent>``, and its own random
token, sent in the ``X-Fleetwarden-Token`` header. An optional JSON body
``{"state": "working" | "waiting"}`` tells an agent waiting for input from a stalled one;
every accepted beat is handed to the ``on_beat`` callback as ``(agent, kind)`` with kind
``working``, ``waiting`` or ``beat`` (no state given). Answers:

    204  beat accepted (``on_beat`` has returned)
    400  a body other than ``{"state": "working" | "waiting"}``
    403  unknown agent or wrong token, with no detail
    413  a body over 4 KiB
    500  ``on_beat`` failed

Tokens and the port persist in ``<state_dir>/heartbeat.json`` (mode 0600, replaced
atomically): ``{"version": 1, "port": 41234, "tokens": {"coder-1": "..."}}``. A restarted
Fleetwarden binds the same port again and accepts the same tokens, so agents that kept
running keep their URL. Tokens are secrets: they are never logged.
"""

from __future__ import annotations

import contextlib
import enum
import hmac
import json
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

from aiohttp import web

from fleet.errors import FleetError
from fleet.names import AgentName, agent_name, is_agent_name

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"  # agents run on this host; the endpoint is never exposed beyond it
TOKEN_HEADER: Final = "X-Fleetwarden-Token"
STATE_FILE: Final = "heartbeat.json"
MAX_BODY: Final = 4096
_FILE_VERSION: Final = 1
_MAX_WARNED: Final = 256  # names remembered for log-once; a scanner must not grow it forever
_INVALID_NAME: Final = "<invalid name>"  # log key for names we refuse to echo into logs


class BeatKind(enum.StrEnum):
    WORKING = "working"
    WAITING = "waiting"  # idle, waiting for input: alive, not stalled
    BEAT = "beat"  # alive, no state given


OnBeat = Callable[[str, str], Awaitable[None]]  # (agent, kind) -> None


class HeartbeatState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


def parse_beat(body: bytes) -> BeatKind | None:
    """The kind of beat a request body announces; ``None`` for a malformed body."""
    if not body.strip():
        return BeatKind.BEAT
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    state = data.get("state")
    if state is None:
        return BeatKind.BEAT
    if state in (BeatKind.WORKING, BeatKind.WAITING):
        return BeatKind(state)
    return None


def token_matches(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is ``expected``, in time independent of where they differ."""
    if given is None:
        return False
    # Compare even when there is nothing to compare with, so timing says little.
    reference = secrets.token_urlsafe(24) if expected is None else expected
    same = hmac.compare_digest(reference.encode(), given.encode("utf-8", "replace"))
    return same and expected is not None


class HeartbeatServer:
    """The heartbeat endpoint on 127.0.0.1. ``port`` 0 reuses the port saved in the state
    file, or picks a free one; a port that is taken is replaced by a free one, with a
    warning."""

    def __init__(self, state_dir: Path, on_beat: OnBeat, *, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"heartbeat port must be 0-65535, not {port}")
        self._path = state_dir / STATE_FILE
        self._on_beat = on_beat
        self._wanted_port = port
        self._tokens: dict[AgentName, str] = {}
        self._warned: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._state = HeartbeatState.NEW

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
    def path(self) -> Path:
        """The state file holding the port and the tokens."""
        return self._path

    async def start(self) -> None:
        """Load the saved tokens and listen, on the saved port when it is free."""
        if self._state is not HeartbeatState.NEW:
            raise RuntimeError(f"HeartbeatServer.start() called in state {self._state.value}")
        saved_port, self._tokens = _load(self._path)
        preferred = self._wanted_port or saved_port or 0
        sock, refused = _listen(preferred)
        self._port = sock.getsockname()[1]
        if refused is not None:
            log.warning(
                "heartbeat port %d is not available (%s); listening on %d instead: agents "
                "still running from before the restart post to the old port, so their "
                "heartbeats will be missed until they are restarted",
                preferred,
                refused.strerror or refused,
                self._port,
            )
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/heartbeat/{agent}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
            _save(self._path, self._port, self._tokens)
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner
        self._state = HeartbeatState.RUNNING
        log.info("heartbeat endpoint listening on http://%s:%d", HOST, self._port)

    async def stop(self) -> None:
        """Stop listening. The tokens stay on disk for the next start."""
        if self._state is HeartbeatState.RUNNING and self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._state = HeartbeatState.STOPPED

    # -- tokens and URLs ---------------------------------------------------------------

    def url_for(self, agent: str) -> str:
        """Where ``agent`` posts its heartbeats."""
        return f"http://{HOST}:{self.port}/heartbeat/{agent_name(agent)}"

    def token_for(self, agent: str) -> str:
        """``agent``'s token: the one it already has, or a new one, saved before it is given."""
        name = self._loaded(agent)
        existing = self._tokens.get(name)
        if existing is not None:
            return existing
        tokens = {**self._tokens, name: secrets.token_urlsafe(24)}
        _save(self._path, self.port, tokens)
        self._tokens = tokens
        self._warned.discard(name)
        return tokens[name]

    def revoke(self, agent: str) -> bool:
        """Forget ``agent``'s token, so its beats are refused; whether it had one."""
        name = self._loaded(agent)
        if name not in self._tokens:
            return False
        tokens = {key: value for key, value in self._tokens.items() if key != name}
        _save(self._path, self.port, tokens)
        self._tokens = tokens
        return True

    def _loaded(self, agent: str) -> AgentName:
        name = agent_name(agent)
        if self._state is HeartbeatState.NEW:
            raise RuntimeError("HeartbeatServer tokens are loaded by start(); call it first")
        return name

    # -- requests ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_name = request.match_info["agent"]
        agent = AgentName(raw_name) if is_agent_name(raw_name) else None
        expected = None if agent is None else self._tokens.get(agent)
        if agent is None or not token_matches(expected, request.headers.get(TOKEN_HEADER)):
            why = "unknown agent" if expected is None else "wrong token"
            self._warn_once(agent or _INVALID_NAME, "refused a heartbeat for %s: %s", why)
            return web.Response(status=403)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a chunked body without a length
            return web.Response(status=413)
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

    def _warn_once(self, key: str, message: str, why: str) -> None:
        if key in self._warned or len(self._warned) >= _MAX_WARNED:
            log.debug(message, key, why)
            return
        self._warned.add(key)
        log.warning(message, key, why)


def _listen(preferred: int) -> tuple[socket.socket, OSError | None]:
    """A socket bound to ``preferred`` on 127.0.0.1 or, if that fails, to a free port, with
    why ``preferred`` could not be had."""
    refused: OSError | None = None
    if preferred:
        try:
            return _bind(preferred), None
        except OSError as exc:
            refused = exc
    try:
        return _bind(0), refused
    except OSError as exc:
        raise FleetError(f"heartbeat endpoint: cannot listen on {HOST}: {exc}") from exc


def _bind(port: int) -> socket.socket:
    # Python sockets are not inherited by child processes, so agents never hold the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _load(path: Path) -> tuple[int | None, dict[AgentName, str]]:
    """The saved port and tokens; nothing when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, {}
    except (OSError, ValueError) as exc:
        log.warning(
            "ignoring the unreadable heartbeat state %s (%s): running agents' heartbeats "
            "will be refused until they are restarted",
            path,
            type(exc).__name__,  # not the message: it may quote the file, tokens and all
        )
        return None, {}
    if not isinstance(data, dict):
        log.warning("ignoring the malformed heartbeat state %s", path)
        return None, {}
    port = data.get("port")
    tokens = data.get("tokens")
    saved_port = port if type(port) is int and 0 < port <= 65535 else None
    if not isinstance(tokens, dict):
        return saved_port, {}
    return saved_port, {
        AgentName(name): token
        for name, token in tokens.items()
        if is_agent_name(name) and isinstance(token, str) and token
    }


def _save(path: Path, port: int, tokens: Mapping[AgentName, str]) -> None:
    """Replace the state file atomically; it holds secrets, so only its owner may read it."""
    data = {"version": _FILE_VERSION, "port": port, "tokens": dict(sorted(tokens.items()))}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600, and os.replace keeps that mode.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise FleetError(f"cannot save the heartbeat tokens to {path}: {exc}") from exc
