"""What Fleetwarden's loopback servers share: a socket on 127.0.0.1 that prefers the port it
had last time, and per-agent secrets that outlive a restart.

Both the heartbeat endpoint and the metering proxy hand each agent a URL and a secret. An
agent keeps running when Fleetwarden restarts, so both must come back: the port and the
secrets persist in a small JSON file in the state dir (mode 0600, replaced atomically),
``{"version": 1, "port": 41234, "tokens": {"coder-1": "..."}}``, with ``"retired": {"coder-1":
["..."]}``, an agent's last tokens revoked, once there are any (redacted still; they open
nothing).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from fleet.connections import openfiles
from fleet.connections.admission import Admission, Busy, Handler, Who
from fleet.connections.limits import Limits
from fleet.connections.secrets_file import RETIRED_KEPT, load_secrets, save_secrets
from fleet.errors import FleetError
from fleet.names import AgentName, agent_name, is_agent_name

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"  # agents run on this host; nothing listens beyond it
_BACKLOG: Final = 512  # connections the kernel queues before they are accepted
STARTING: Final = "Fleetwarden is starting: try again"
"""Why a token loaded at start is refused until the runs still going are known."""


class Starting(Exception):
    """A token loaded from the file (or another orchestrator's) before the start found
    whether its run goes on: answered 503 by every server (:func:`serve`), never accepted."""

    def __init__(self, agent: AgentName) -> None:
        super().__init__(f"{STARTING} ({agent}'s token is not confirmed yet)")
        self.agent = agent


def token_matches(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is ``expected``, in time independent of where they differ."""
    if given is None:
        return False
    # Compare even when there is nothing to compare with, so timing says little.
    reference = secrets.token_urlsafe(24) if expected is None else expected
    same = hmac.compare_digest(reference.encode(), given.encode("utf-8", "replace"))
    return same and expected is not None


def token_digest(token: str) -> str:
    """What the ledger keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class AgentSecrets:
    """Per-agent random tokens and the last port, kept in ``path``. ``what`` names the
    server in messages ("heartbeat", "metering"). ``confirm``: a token loaded from the file
    or adopted from the ledger is refused (:class:`Starting`) until the first
    :meth:`keep_only` says which runs go on — a run that ended while Fleetwarden was away
    must not have its token accepted meanwhile; one issued since is accepted."""

    def __init__(self, path: Path, what: str, *, confirm: bool = False) -> None:
        self.path = path
        self._what = what
        self._confirmed = not confirm  # whether keep_only has run (or nothing waits for it)
        self._unconfirmed: set[AgentName] = set()  # loaded, not yet known to be a live run's
        self._tokens: dict[AgentName, str] = {}
        self._port: int | None = None
        # Tokens another orchestrator of a shared ledger gave out, by their SHA-256 only.
        self._digests: dict[AgentName, str] = {}
        self._changes: list[tuple[str, str | None]] = []  # digests the ledger has yet to get
        self._published = False  # whether the tokens loaded from the file went to the ledger
        self._retired: dict[AgentName, list[str]] = {}  # its last tokens revoked, newest last

    def defer(self, digests: Mapping[str, str]) -> list[AgentName]:
        """Forget each token held here whose agent has another one in ``digests`` (the
        ledger's: another orchestrator of it gave that agent a newer run since); the agents
        whose tokens were forgotten."""
        stale = [
            name
            for name, token in self._tokens.items()
            if digests.get(name) not in (None, token_digest(token))
        ]
        if stale:
            for name in stale:
                self._retire(name)
            self._write({key: value for key, value in self._tokens.items() if key not in stale})
        return stale

    def adopt(self, digests: Mapping[str, str]) -> None:
        """Accept also the tokens whose digests these are (the ledger's: given out by
        another orchestrator of it)."""
        self._digests = {AgentName(k): v for k, v in digests.items() if is_agent_name(k)}
        if not self._confirmed:
            self._unconfirmed |= set(self._digests)

    def changes(self) -> list[tuple[str, str | None]]:
        """The digests issued or revoked since the last call (for the ledger), and every
        token held here the first time (so the ledger knows those issued before)."""
        if not self._published:
            self._published = True
            known = [(str(a), token_digest(t)) for a, t in self._tokens.items()]
            self._changes = [*known, *self._changes]
        taken, self._changes = self._changes, []
        return taken

    def load(self) -> int | None:
        """Read the file; return the port saved in it, if any."""
        self._port, self._tokens, self._retired = load_secrets(self.path, self._what)
        if not self._confirmed:
            self._unconfirmed = set(self._tokens)
        return self._port

    def save_port(self, port: int) -> None:
        self._port = port
        self._write(self._tokens)

    def _write(self, tokens: dict[AgentName, str]) -> None:
        """Save ``tokens`` (with the port and the retired tokens), then hold them."""
        save_secrets(self.path, self._what, self._port, tokens, self._retired)
        self._tokens = tokens

    def get(self, agent: AgentName) -> str | None:
        return self._tokens.get(agent)

    def values(self) -> list[str]:
        """Every token given out, the retired ones too (for the redactor)."""
        return [*self._tokens.values(), *(t for held in self._retired.values() for t in held)]

    def issue(self, agent: str) -> str:
        """``agent``'s token: the one it has, or a new one, saved before it is given out."""
        name = agent_name(agent)
        existing = self._tokens.get(name)
        if existing is not None:
            return existing
        tokens = {**self._tokens, name: secrets.token_urlsafe(24)}
        self._write(tokens)
        self._unconfirmed.discard(name)  # a new run's, not one loaded
        self._changes.append((name, token_digest(tokens[name])))
        return tokens[name]

    def revoke(self, agent: str) -> bool:
        """Forget ``agent``'s token; whether it had one."""
        name = agent_name(agent)
        self._unconfirmed.discard(name)  # the next token is a new run's
        adopted = self._digests.pop(name, None) is not None
        if name not in self._tokens:
            if adopted:
                self._changes.append((name, None))
            return adopted
        self._retire(name)
        self._write({key: value for key, value in self._tokens.items() if key != name})
        self._changes.append((name, None))
        return True

    def keep_only(
        self, agents: Iterable[str], *, known: Iterable[str] | None = None
    ) -> list[AgentName]:
        """Forget every token but ``agents``' (given out here or by another orchestrator);
        the agents whose tokens were forgotten, by name. The tokens kept are confirmed
        (accepted from now on). ``known``: the agents there still are; the retired tokens
        of any other are forgotten too (nothing of theirs is left to redact)."""
        keep = {agent_name(agent) for agent in agents}
        self._confirmed, self._unconfirmed = True, set()
        gone = sorted((set(self._tokens) | set(self._digests)) - keep)
        if known is not None:
            left = {agent_name(agent) for agent in known} | keep
            forgotten = [name for name in self._retired if name not in left]
            for name in forgotten:
                del self._retired[name]
            if forgotten and not gone:
                self._write(self._tokens)
        if not gone:
            return []
        for name in gone:
            self._retire(name)
            self._digests.pop(name, None)
            self._changes.append((name, None))
        tokens = {key: value for key, value in self._tokens.items() if key in keep}
        if len(tokens) != len(self._tokens):
            self._write(tokens)
        return gone

    def _retire(self, name: AgentName) -> None:
        """Keep ``name``'s token, about to be revoked, among its retired ones."""
        token = self._tokens.get(name)
        if token is not None:
            self._retired[name] = [*self._retired.get(name, [])[1 - RETIRED_KEPT :], token]

    def revoked(self, agent: AgentName, given: str | None) -> bool:
        """Whether ``given`` is one of ``agent``'s retired tokens (its run is over)."""
        return given is not None and any(
            token_matches(old, given) for old in self._retired.get(agent, ())
        )

    def knows(self, agent: AgentName) -> bool:
        """Whether ``agent`` has a token (given out here, or by another orchestrator)."""
        return agent in self._tokens or agent in self._digests

    def matches(self, raw_name: str, given: str | None) -> AgentName | None:
        """The agent ``raw_name`` names when ``given`` is its token; ``None`` otherwise.
        The one check of a token every door makes: a token revoked (its run ended) is
        refused here, so a door mounted on the endpoint refuses it too; a loaded token not
        yet confirmed raises :class:`Starting` (the server answers 503)."""
        agent = AgentName(raw_name) if is_agent_name(raw_name) else None
        expected = None if agent is None else self._tokens.get(agent)
        if expected is None and agent is not None and agent in self._digests:
            digest = token_digest(given) if given is not None else None
            return self._confirm(agent) if token_matches(self._digests[agent], digest) else None
        return self._confirm(agent) if token_matches(expected, given) else None

    def _confirm(self, agent: AgentName | None) -> AgentName | None:
        """``agent``, whose token was given, unless that token awaits confirmation."""
        if agent is not None and agent in self._unconfirmed:
            raise Starting(agent)
        return agent


@web.middleware
async def _starting(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request with a token that awaits confirmation (:class:`Starting`): 503, said why."""
    try:
        return await handler(request)
    except Starting as exc:
        log.info("refused a request of %s: its token is not confirmed yet (starting)", exc.agent)
        return web.Response(status=503, text=STARTING + "\n", headers={"Retry-After": "1"})


@dataclass(slots=True)
class Served:
    """A loopback server listening: its port, its admission, and how to stop it."""

    runner: web.AppRunner
    listener: asyncio.AbstractServer
    port: int
    admission: Admission
    factory: Callable[[], asyncio.Protocol]
    """A connection's protocol, within the same caps: for a sandbox door that serves this
    server in place (:meth:`fleet.sandbox.egress.doors.DoorSet.open_served`), with no second
    connection to the port."""

    async def close(self) -> None:
        """Stop accepting, then let aiohttp close the connections (requests in flight get
        the runner's shutdown timeout)."""
        self.listener.close()
        await self.runner.cleanup()


async def serve(
    app: web.Application,
    secrets: AgentSecrets,
    *,
    wanted_port: int,
    what: str,
    shutdown_timeout: float,
    limits: Limits,
    who: Who | None = None,
    busy: Busy | None = None,
    refusal: bytes = b"",
) -> Served:
    """Load ``secrets`` and serve ``app`` on 127.0.0.1 within ``limits``: on
    ``wanted_port``, else the port saved last time, else any free one (with a warning when
    the saved one is taken, as agents still running from before use it). ``who`` names the
    agent a request is from (its secret checked), ``busy`` answers one past its agent's
    cap, ``refusal`` is sent to a connection past the server's (see
    :class:`fleet.connections.admission.Admission`)."""
    _quiet_bad_requests()
    saved_port = secrets.load()
    preferred = wanted_port or saved_port or 0
    sock, refused = listen(preferred, what)
    port: int = sock.getsockname()[1]
    if refused is not None:
        log.warning(
            "%s: port %d is not available (%s); listening on %d instead: agents still "
            "running from before use the old port, so what they send is missed until "
            "they are restarted",
            what,
            preferred,
            refused.strerror or refused,
            port,
        )
    admission = Admission(
        what,
        max_connections=limits.connection_cap(openfiles.current().soft),
        max_per_agent=limits.max_per_agent,
        idle_timeout=limits.idle_timeout,
        refusal=refusal,
        who=who,
        busy=busy,
    )
    app.middlewares.insert(0, admission.middleware)
    app.middlewares.insert(0, _starting)  # outermost: the admission's check raises it too
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        # aiohttp closes a connection still waiting for a request's headers this long
        # after its last answer (a new one is closed sooner, by admission).
        keepalive_timeout=limits.header_timeout,
        max_line_size=limits.max_header_line,
        max_field_size=limits.max_header_line,
        max_headers=limits.max_headers,
    )
    listener: asyncio.AbstractServer | None = None
    try:
        await runner.setup()
        if runner.server is None:
            raise RuntimeError("aiohttp's runner has no server after setup()")
        loop = asyncio.get_running_loop()
        # asyncio accepts as many connections per wake-up as its backlog: a small one bounds
        # that burst (the reserve holds it); the kernel's queue is then made long again.
        factory = admission.factory(runner.server)
        listener = await loop.create_server(factory, sock=sock, backlog=openfiles.ACCEPT_BURST)
        sock.listen(_BACKLOG)
        secrets.save_port(port)
    except BaseException:
        if listener is not None:
            listener.close()
        await runner.cleanup()
        sock.close()
        raise
    log.info(
        "%s: up to %d connections, %d requests at once per agent; a new connection has "
        "%g s to send a request",
        what,
        admission.max_connections,
        limits.max_per_agent,
        limits.idle_timeout,
    )
    return Served(runner, listener, port, admission, factory)


class _NoSenderText(logging.Filter):
    """Drops aiohttp's report of a request it could not parse: the report quotes the
    request, and anyone who can reach the port could write anything into the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


_FILTER: Final = _NoSenderText()


def _quiet_bad_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if _FILTER not in server_log.filters:
        server_log.addFilter(_FILTER)


def listen(preferred: int, what: str) -> tuple[socket.socket, OSError | None]:
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
        raise FleetError(f"{what}: cannot listen on {HOST}: {exc}") from exc


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
