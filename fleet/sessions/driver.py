"""The session driver: the I/O half of one live session (one run).

It follows the run's output in the agent's log from where the run began, hands each line
to the run's :class:`~fleet.sessions.base.SessionProtocol` and carries out what the
protocol says: lines to write go to the run's stdin FIFO; an ask becomes an approval
request (:class:`~fleet.approvals.service.Approvals`); a withdrawn ask is closed; a sign
of life is a heartbeat (``working``, or ``waiting`` between turns and while an ask waits
for the operator, so the watchdog never calls it stalled). The operator's answer comes
back through :meth:`SessionDriver.deliver`.

Reattached after a restart (:meth:`SessionDriver.resume`), it reads the run's output
again from its start with every write dropped, which rebuilds the protocol's state; asks
already in the ledger are not asked again, and answers given while nobody could deliver
them are delivered then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fleet.approvals.binding import request_digest, shown_digest
from fleet.approvals.service import Approvals
from fleet.ledger.records.approvals import ApprovalRequest, Decision
from fleet.model import AgentSpec, PermissionMode
from fleet.names import AgentName
from fleet.sessions.base import (
    Alive,
    Asked,
    Closing,
    Effect,
    SessionProtocol,
    TurnEnded,
    Withdrawn,
    Write,
)
from fleet.timing.clock import Clock
from fleet.transcript.logtail import Cursor, follow, size_of

log = logging.getLogger(__name__)

POLL = 0.05  # seconds between two looks at a quiet log
BEAT_EVERY = 5.0  # seconds between two heartbeats saying the same
NO_APPROVALS = "this Fleetwarden takes no approvals, so whatever is asked is denied"

Writer = Callable[[str], Awaitable[None]]
Beat = Callable[[str], Awaitable[None]]
TurnOver = Callable[[bool], Awaitable[None]]
"""Told a turn ended: whether the session waits for its next turn (not when the next one
began at once, nor when its process ends with the turn)."""


@dataclass(frozen=True, slots=True)
class DriverSetup:
    """What one driver needs to know of its run."""

    agent: AgentName
    run_id: int
    spec: AgentSpec
    log: Path
    offset: int  # where the run's output begins in the log
    starter: str | None  # who started the agent: they may answer its asks


class SessionDriver:
    """Drives one live session: follows its output, writes its input."""

    def __init__(
        self,
        setup: DriverSetup,
        protocol: SessionProtocol,
        *,
        write: Writer,
        beat: Beat,
        clock: Clock,
        approvals: Approvals | None = None,
        turn_over: TurnOver | None = None,
        poll: float = POLL,
    ) -> None:
        self.setup = setup
        self._protocol = protocol
        self._write = write
        self._beat = beat
        self._clock = clock
        self._approvals = approvals
        self._turn_over = turn_over
        self._poll = poll
        self._cursor = Cursor(setup.offset)
        self._replaying = False
        self._unsent: list[str] = []  # writes dropped in a replay since the protocol closed
        self._deferred: list[ApprovalRequest] = []  # answers that came during a replay
        self.closing = False  # the protocol is ending the process: no more turns to it
        self.gone = asyncio.Event()  # set once the run has ended (or is no longer driven)
        self._task: asyncio.Task[None] | None = None
        self._deadlines: set[asyncio.Task[None]] = set()  # one per open ask
        self._last_beat: tuple[str, datetime] | None = None

    @property
    def channel(self) -> str:
        return self._protocol.name

    @property
    def busy(self) -> bool:
        return self._protocol.busy

    # -- lifecycle ---------------------------------------------------------------------

    async def begin(self, prompt: str | None) -> None:
        """A new process: write the protocol's opening (and first turn), then follow."""
        await self._apply(self._protocol.opening(prompt))
        self._start()

    async def resume(self) -> None:
        """A process that ran on while Fleetwarden restarted: read its output so far with
        writes dropped, deliver the answers it missed, then follow."""
        end = await asyncio.to_thread(size_of, self.setup.log)
        self._replaying = True
        try:
            while self._cursor.offset < end:
                if not await self._read():
                    break
        finally:
            self._replaying = False
        # The protocol was ending the process when Fleetwarden stopped: say it again, in
        # case it was never said (a process already ending reads no more).
        await self._apply([Write(line) for line in self._unsent] if self.closing else [])
        self._unsent.clear()
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            await self.deliver(request)
        if self._approvals is not None:
            for request in await self._approvals.undelivered(self.setup.run_id):
                if request.channel == self.channel:
                    await self.deliver(request)
                    await self._approvals.mark_delivered(request.id)
        self._start()

    async def close(self, why: str) -> None:
        """The run ended: stop following; close its asks still open, saying ``why``."""
        await self.detach()
        if self._approvals is not None:
            await self._approvals.close_run(self.setup.run_id, why)

    async def detach(self) -> None:
        """Stop following; the process runs on (Fleetwarden is stopping)."""
        deadlines, self._deadlines = list(self._deadlines), set()
        for timer in deadlines:
            timer.cancel()
        await asyncio.gather(*deadlines, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.gone.set()

    # -- control -----------------------------------------------------------------------

    async def turn(self, text: str) -> bool:
        """Give the session a turn; whether it went in now (else it waits its turn)."""
        effects = self._protocol.turn(text)
        await self._apply(effects)
        return any(isinstance(e, Write) for e in effects)

    async def interrupt(self) -> bool:
        """End the turn in progress; whether there was one."""
        effects = self._protocol.interrupt()
        await self._apply(effects)
        return bool(effects)

    async def set_mode(self, mode: PermissionMode) -> bool:
        """Change the permission mode in-band; whether the CLI could."""
        effects = self._protocol.set_mode(mode)
        if effects is None:
            return False
        await self._apply(effects)
        return True

    async def deliver(self, request: ApprovalRequest) -> None:
        """Tell the CLI the answer to ``request`` in its own terms (after the replay, when
        it comes during one: the protocol's state is whole only then) — if the ask it waits
        on under that id is still the one ``request`` showed: an answer that comes after
        the CLI asked something else under the same id is told to nobody."""
        if self._replaying:
            self._deferred.append(request)
            return
        decision = request.decision or Decision.DENY
        digest = request_digest(request)
        answer = self._protocol.answer(request.native_id, decision, request.reason, digest=digest)
        await self._apply(answer)

    # -- following ---------------------------------------------------------------------

    def _start(self) -> None:
        name = f"session-{self.setup.agent}-{self.setup.run_id}"
        self._task = asyncio.create_task(self._follow(), name=name)

    async def _follow(self) -> None:
        while True:
            try:
                more = await self._read()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad step must not end the session's driver
                log.exception("session of %s: could not read its output", self.setup.agent)
                more = False
            if not more:
                await asyncio.sleep(self._poll)

    async def _read(self) -> bool:
        """Feed the lines written since the cursor; whether more waits to be read."""
        if size_of(self.setup.log) <= self._cursor.offset:
            return False
        got = await asyncio.to_thread(follow, self.setup.log, self._cursor)
        self._cursor = got.cursor
        for line in got.lines:
            await self._apply(self._protocol.feed(line.text))
        return got.more

    async def _apply(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            try:
                await self._carry_out(effect)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("session of %s: could not carry out %s", self.setup.agent, effect)
        # Told once the turn's effects are carried out: whether the session waits now.
        ended = any(isinstance(e, TurnEnded) for e in effects)
        if ended and not self._replaying and self._turn_over is not None:
            await self._turn_over(not self.closing and not self.busy)

    async def _carry_out(self, effect: Effect) -> None:
        setup = self.setup
        if isinstance(effect, Write):
            if not self._replaying:
                await self._write(effect.line)
            elif self.closing:
                self._unsent.append(effect.line)
        elif isinstance(effect, Asked):
            if self._approvals is None:  # nobody could ever answer: no, at once
                native, digest = effect.ask.native_id, shown_digest(effect.ask)
                no = self._protocol.answer(native, Decision.DENY, NO_APPROVALS, digest=digest)
                await self._apply(no)
                return
            request = await self._approvals.open(
                agent=setup.agent,
                run_id=setup.run_id,
                channel=self.channel,
                ask=effect.ask,
                wait_seconds=setup.spec.approval_timeout,
                max_open=setup.spec.max_open_approvals,
                starter=setup.starter,
                rules=setup.spec.allow,
                deny=setup.spec.deny,
            )
            if request.state.is_open:
                self._expire_at(request)
                if not self._replaying:
                    await self._alive("waiting", force=True)
        elif isinstance(effect, Withdrawn):
            if self._approvals is not None:
                native, why = effect.native_id, effect.why
                await self._approvals.withdraw(setup.run_id, self.channel, native, why)
        elif isinstance(effect, Alive) and not self._replaying:
            await self._alive(effect.state)
        elif isinstance(effect, Closing):
            self.closing = True

    def _expire_at(self, request: ApprovalRequest) -> None:
        """At ``request``'s deadline, deny what is still open past it, as a timeout."""
        approvals = self._approvals
        if approvals is None:
            return
        wait = (request.deadline - self._clock.now()).total_seconds()

        async def expire() -> None:
            await asyncio.sleep(max(wait, 0.0))
            try:
                await approvals.expire()
            except Exception:
                log.exception("could not time out the asks of %s", self.setup.agent)

        timer = asyncio.create_task(expire(), name=f"deadline-{request.id}")
        self._deadlines.add(timer)
        timer.add_done_callback(self._deadlines.discard)

    async def _alive(self, state: str, *, force: bool = False) -> None:
        """A heartbeat, unless the same one was given moments ago."""
        now = self._clock.now()
        last = self._last_beat
        recent = last is not None and (now - last[1]).total_seconds() < BEAT_EVERY
        if not force and last is not None and last[0] == state and recent:
            return
        self._last_beat = (state, now)
        await self._beat(state)
