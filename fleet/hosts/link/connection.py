"""One persistent SSH connection per host: its state, the loop that keeps it up, and the
commands run over it.

A :class:`HostLink` is started once and stopped once. In between, one background task
connects, waits for the connection to drop, and connects again after a capped exponential
backoff with jitter (:mod:`fleet.hosts.link.backoff`), never more than one attempt a second.
Keepalives notice a dead host within about 15 s. A host whose key is not the one on
record, or that refuses our login, is not retried: the link is ``refused``, with the
message saying what to do, until :meth:`HostLink.retry` is called or the known_hosts or
key file changes (``fleetwarden hosts trust NAME`` rewrites the former).

:meth:`HostLink.run` runs one command as an argv list on a channel of its own
(:mod:`fleet.hosts.remote`); at most ``max_sessions`` at once, the others wait.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from fleet.hosts.errors import HostDown, HostError, HostKeyError, HostLoginRefused, ssh_says
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.link.backoff import Backoff
from fleet.hosts.remote import RemoteResult, run_on
from fleet.hosts.schema import HostEntry, HostName
from fleet.timing.clock import Clock, SystemClock

if TYPE_CHECKING:
    from fleet.hosts.link.dial import Watcher

log = logging.getLogger(__name__)

Setup: TypeAlias = "Callable[[asyncssh.SSHClientConnection], Awaitable[None]]"
"""What a new connection is readied with before the link counts as connected (the host's
state dir, Fleetwarden's scripts there, the port forwards: :mod:`fleet.hosts.service`)."""

Dialer: TypeAlias = (
    "Callable[[HostEntry, Mapping[str, str], LinkSettings], "
    "Awaitable[tuple[asyncssh.SSHClientConnection, Watcher]]]"
)
"""What opens one connection: :func:`dial_with` by default; tests pass a fake."""


class LinkState(enum.Enum):
    NEW = "new"  # not started
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DOWN = "down"  # lost or unreachable; retrying
    REFUSED = "refused"  # host key or login refused; waiting for the operator
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Timings of a link. ``max_sessions`` stays under sshd's default ``MaxSessions`` (10):
    commands past it wait for a channel."""

    connect_timeout: float = 15.0
    keepalive_interval: float = 5.0
    keepalive_count_max: int = 2  # unanswered for 3 intervals: the host is gone (~15 s)
    min_interval: float = 1.0  # between two connection attempts, whatever the backoff says
    refused_recheck: float = 5.0  # how often a refused link looks for changed files
    command_timeout: float = 60.0
    max_sessions: int = 8


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """A link at one moment: its state, since when, the last error, attempts so far."""

    host: HostName
    state: LinkState
    since: datetime
    error: str | None
    attempts: int


class HostLink:
    """The connection to one host, kept up from :meth:`start` to :meth:`stop`."""

    def __init__(
        self,
        entry: HostEntry,
        *,
        env: Mapping[str, str],
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff | None = None,
        settings: LinkSettings | None = None,
        on_change: Callable[[LinkStatus], None] | None = None,
        dialer: Dialer | None = None,
        setup: Setup | None = None,
    ) -> None:
        self.entry = entry
        self._env = dict(env)
        self._clock = clock if clock is not None else SystemClock()
        self._sleep = sleep
        self._backoff = backoff if backoff is not None else Backoff()
        self.settings = settings if settings is not None else LinkSettings()
        self._on_change = on_change
        self._dial = dialer if dialer is not None else dial_with
        self._setup = setup
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_lock = asyncio.Lock()
        self._state = LinkState.NEW
        self._since = self._clock.now()
        self._error: str | None = None
        self._attempts = 0
        self._conn: asyncssh.SSHClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._sessions = asyncio.Semaphore(self.settings.max_sessions)

    @property
    def name(self) -> HostName:
        return self.entry.host_name

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def since(self) -> datetime:
        return self._since

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def attempts(self) -> int:
        return self._attempts

    def status(self) -> LinkStatus:
        return LinkStatus(self.name, self._state, self._since, self._error, self._attempts)

    async def start(self) -> None:
        """Begin keeping the connection up; returns at once (the host may be down)."""
        if self._state is not LinkState.NEW:
            raise RuntimeError(f"host link {self.name} was already started")
        self._set(LinkState.CONNECTING, None)
        self._task = asyncio.create_task(self._keep(), name=f"host-link-{self.name}")

    async def stop(self) -> None:
        """Close the connection and stop reconnecting. Safe to repeat."""
        if self._state is LinkState.STOPPED:
            return
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():  # our caller was cancelled, not only the task
                    raise
            except Exception:
                log.exception("host %s: the link's task failed", self.name)
        await self._close()
        self._set(LinkState.STOPPED, self._error)

    def retry(self) -> None:
        """Try again now: ends a refused link's wait (after ``hosts trust``) or a backoff."""
        self._wake.set()

    async def wait_for(self, *states: LinkState, wait: float) -> LinkStatus:
        """Wait until the link is in one of ``states``; ``TimeoutError`` after ``wait`` s."""
        async with asyncio.timeout(wait):
            while self._state not in states:
                await self._changed.wait()
        return self.status()

    async def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (asyncssh closes the channel at it)
    ) -> RemoteResult:
        """Run ``argv`` on the host and wait for it to end. Raises :class:`HostDown` when
        not connected, :class:`RemoteCommandFailed` when it cannot start or overruns
        ``timeout`` (its channel is then closed)."""
        limit = timeout if timeout is not None else self.settings.command_timeout
        async with self._sessions:
            conn = self._conn
            if conn is None or self._state is not LinkState.CONNECTED:
                reason = f": {self._error}" if self._error else ""
                raise HostDown(f"host {self.name} is {self._state.value}{reason}")
            return await run_on(conn, self.name, argv, input=input, timeout=limit)

    def connection(self) -> asyncssh.SSHClientConnection:
        """The connection while up (for forwards that live as long as it: a sandbox's
        doors). Raises :class:`HostDown` when not connected."""
        conn = self._conn
        if conn is None or self._state is not LinkState.CONNECTED:
            reason = f": {self._error}" if self._error else ""
            raise HostDown(f"host {self.name} is {self._state.value}{reason}")
        return conn

    async def sftp(self) -> asyncssh.SFTPClient:
        """The connection's SFTP session (one per connection, opened on first use), for
        files: a run's private launch spec, a log read from an offset. Raises
        :class:`HostDown` when not connected."""
        async with self._sftp_lock:
            conn = self._conn
            if conn is None or self._state is not LinkState.CONNECTED:
                reason = f": {self._error}" if self._error else ""
                raise HostDown(f"host {self.name} is {self._state.value}{reason}")
            if self._sftp is None:
                try:
                    self._sftp = await conn.start_sftp_client()
                except (OSError, asyncssh.Error) as exc:
                    raise HostDown(f"host {self.name}: no SFTP session: {ssh_says(exc)}") from None
            return self._sftp

    # --- The loop -----------------------------------------------------------------------

    async def _keep(self) -> None:
        last_attempt: float | None = None
        try:
            while True:
                if last_attempt is not None:
                    gap = self.settings.min_interval - (self._clock.monotonic() - last_attempt)
                    if gap > 0:
                        await self._sleep(gap)
                last_attempt = self._clock.monotonic()
                self._attempts += 1
                self._wake.clear()  # a retry() from here on asks for one more attempt
                # While down, retries leave it down (and its `since` alone).
                down = self._state is LinkState.DOWN
                self._set(LinkState.DOWN if down else LinkState.CONNECTING, self._error)
                files = self._files()  # before the attempt: a trust during it is a change
                try:
                    conn, client = await self._dial(self.entry, self._env, self.settings)
                except (HostKeyError, HostLoginRefused) as exc:
                    self._set(LinkState.REFUSED, str(exc))
                    log.error("host %s refused: %s", self.name, exc)
                    await self._wait_refused(files)
                    self._backoff.reset()
                    continue
                except HostError as exc:
                    self._set(LinkState.DOWN, str(exc))
                    await self._pause(self._backoff.next())
                    continue
                except Exception as exc:  # a bug must not end the link: it retries, logged
                    log.exception("host %s: connecting failed unexpectedly", self.name)
                    self._set(LinkState.DOWN, f"connecting failed: {exc!r}")
                    await self._pause(self._backoff.next())
                    continue
                if self._setup is not None:
                    try:
                        await self._setup(conn)
                    except (HostError, OSError, asyncssh.Error) as exc:
                        conn.close()
                        why = str(exc) if isinstance(exc, HostError) else ssh_says(exc)
                        self._set(LinkState.DOWN, f"setting up the host failed: {why}")
                        log.warning("host %s: setting it up failed: %s", self.name, why)
                        await self._pause(self._backoff.next())
                        continue
                self._conn = conn
                self._backoff.reset()
                self._set(LinkState.CONNECTED, None)
                log.info("host %s connected", self.name)
                await conn.wait_closed()
                self._conn = None
                self._sftp = None
                why = ssh_says(client.lost) if client.lost else "the host closed the connection"
                self._set(LinkState.DOWN, f"connection lost: {why}")
                log.warning("host %s down: %s", self.name, why)
                await self._pause(self._backoff.next())
        finally:
            await self._close()

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` (the injected sleep), or less if :meth:`retry` is called."""
        nap = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({nap, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            woken.cancel()
            await asyncio.wait({nap, woken})

    async def _wait_refused(self, before: tuple[tuple[int, int] | None, ...]) -> None:
        """Until :meth:`retry`, or the known_hosts or key file differs from ``before``."""
        while not self._wake.is_set() and self._files() == before:
            await self._pause(self.settings.refused_recheck)

    def _files(self) -> tuple[tuple[int, int] | None, ...]:
        paths = [self.entry.known_hosts, self.entry.key_file]
        return tuple(_stamp(path) for path in paths if path is not None)

    async def _close(self) -> None:
        self._sftp = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    def _set(self, state: LinkState, error: str | None) -> None:
        if state is not self._state:
            self._since = self._clock.now()
        self._state, self._error = state, error
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_change is not None:
            try:
                self._on_change(self.status())
            except Exception:
                log.exception("host %s: a state listener failed", self.name)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


async def dial_with(
    entry: HostEntry, env: Mapping[str, str], settings: LinkSettings
) -> tuple[asyncssh.SSHClientConnection, Watcher]:
    """:func:`fleet.hosts.link.dial.dial` with a link's timings (asyncssh loads here, at the first
    dial)."""
    from fleet.hosts.link.dial import dial

    return await dial(
        entry,
        env,
        connect_timeout=settings.connect_timeout,
        keepalive_interval=settings.keepalive_interval,
        keepalive_count_max=settings.keepalive_count_max,
    )
