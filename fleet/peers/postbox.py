"""The postbox: every message one agent sends another — weighed against the rules
(:mod:`fleet.peers.rules`), recorded (redacted) with its receipt, and delivered framed
(:mod:`fleet.peers.framing`) into the receiver's session, once, in order.

A message is recorded ``queued``, then delivered through :meth:`Deliverer.send` (the
fleet's ``send``: in-band in a live session's turn, typed into a TUI, or a headless CLI's
next run resuming its session) — tried when it is sent, and when the fleet tells that the
receiver's turn ended or a run started or ended (:meth:`Postbox.hear`). A
receiver still working on its last prompt keeps it queued. A receiver that does not run
keeps it queued until it does (``wake: wait``), or (``wake: start``) is started with it as
its prompt through the one admission — never by resuming its session outside it. A refused
message is recorded too (``refused``, why), then :class:`PeerRefusal` is raised. Each try
at a delivery (or a wake) asks again whether the sender may reach the receiver now
(:meth:`Rules.reach`): a message whose sender lost the right while it waited is refused,
saying why, and never delivered.

Queued messages are the ledger's: a restart of Fleetwarden delivers them later
(:meth:`Postbox.start` sweeps every receiver a message waits for). Two deliveries to one
receiver never interleave (a lock per receiver); a message is marked delivered once
(``MessagesStore.delivered`` wins once), and each listener (:meth:`Postbox.listen`) hears
each message recorded and each delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Final, NoReturn, Protocol

from fleet.errors import AgentNotRunning, FleetError
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.peers import MessageKind, MessageRecord, NewMessage
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.ledger.stores.running.runs import RunReport, RunsStore
from fleet.model import AgentSpec
from fleet.peers.errors import PeerRefusal
from fleet.peers.framing import defuse, frame
from fleet.peers.rules import REFUSALS_KEPT, Rules
from fleet.supervisor.admission.admit import Wait
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Refused, Started
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

MAX_WAIT: Final = 600.0
"""The longest a sender may wait for its message's receipt (``--verify``)."""

Heard = Callable[[MessageRecord], Awaitable[None]]
"""A listener: a message as it was recorded (queued or refused) or delivered."""
_HELD: ContextVar[list[MessageRecord] | None] = ContextVar("held_messages", default=None)
"""What was recorded while the weighing is held, to be told once it is let go."""


class Deliverer(Protocol):
    """The fleet as the postbox reaches it (:class:`fleet.supervisor.fleet.Fleet`)."""

    async def knows(self, name: str) -> bool: ...

    async def spec(self, name: str) -> AgentSpec: ...

    def roster(self) -> list[AgentSpec]: ...

    async def send(self, name: str, text: str, *, by: str = "operator") -> RunReport | None: ...


class Admits(Protocol):
    """The one admission (:class:`fleet.supervisor.admission.admit.Admission`)."""

    async def admit(self, request: LaunchRequest, wait: Wait | None = None) -> Admitted: ...


class Postbox:
    """Messages between the fleet's agents, with their receipts."""

    def __init__(
        self,
        *,
        messages: MessagesStore,
        runs: RunsStore,
        fleet: Deliverer,
        admission: Admits,
        redact: Callable[[str], str],
        clock: Clock,
        max_chars: int = 4000,
        queue: int = 20,
    ) -> None:
        """``redact``: applied to every text before it is recorded or delivered;
        ``max_chars``: the longest text a message may have; ``queue``: how many messages
        may wait for one receiver."""
        self._messages = messages
        self._runs = runs
        self._fleet = fleet
        self._admission = admission
        self._redact = redact
        self.rules = Rules(
            messages=messages, fleet=fleet, clock=clock, max_chars=max_chars, queue=queue
        )
        self._listeners: list[Heard] = []
        self._weighing = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._settled: dict[int, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[int]] = set()
        self._stopped = False

    @contextlib.asynccontextmanager
    async def weighed(self) -> AsyncIterator[None]:
        """Held from a message's weighing against the rules to its record, so calls at once
        cannot pass the sender's rate or the receiver's queue together; the listeners are
        told what was recorded once it is let go (a slow chat holds no other call)."""
        held: list[MessageRecord] = []
        token = _HELD.set(held)
        try:
            async with self._weighing:
                yield
        finally:
            _HELD.reset(token)
            for message in held:
                await self._tell(message)

    def listen(self, callback: Heard) -> None:
        """Call ``callback`` for each message recorded (queued or refused) and each one
        delivered, from now on."""
        self._listeners.append(callback)

    # -- sending -----------------------------------------------------------------------

    async def send(
        self,
        sender: str,
        receiver: str,
        text: str,
        *,
        kind: MessageKind = "message",
        task_id: int | None = None,
    ) -> MessageRecord:
        """Record ``text`` from ``sender`` to ``receiver`` and begin its delivery; the
        message as recorded (``queued``). :class:`PeerRefusal` saying why, after the
        refused message is recorded."""
        async with self.weighed():
            await self.check(sender, receiver, text, kind=kind)
            message = await self.record(sender, receiver, text, kind=kind, task_id=task_id)
        self._soon(receiver)
        return message

    async def check(
        self, sender: str, receiver: str, text: str, *, kind: MessageKind = "message"
    ) -> None:
        """:class:`PeerRefusal` if the rules refuse ``text`` from ``sender`` to
        ``receiver`` — recorded first, as a ``refused`` message."""
        why = await self.rules.why_not(sender, receiver, text)
        if why is not None:
            await self.refuse(sender, receiver, text, kind=kind, why=why)

    async def refuse(
        self, sender: str, receiver: str, text: str, *, kind: MessageKind, why: str
    ) -> NoReturn:
        """Record ``text`` refused (``why``) and raise :class:`PeerRefusal` saying why;
        past :data:`~fleet.peers.rules.REFUSALS_KEPT` refusals of ``sender`` this hour, it
        is refused without being kept, and the sender is told so."""
        if await self.rules.keeps_refusal(sender):
            await self.record(sender, receiver, text, kind=kind, why=why)
            raise PeerRefusal(why)
        raise PeerRefusal(
            f"{why} (you were refused {REFUSALS_KEPT} times this hour: stop and read "
            "`fw-msg peers`; what you send is not even kept now)"
        )

    async def record(
        self,
        sender: str,
        receiver: str,
        text: str,
        *,
        kind: MessageKind = "message",
        task_id: int | None = None,
        why: str = "",
    ) -> MessageRecord:
        """Record a message (its text and ``why`` redacted; ``why`` given: refused), and
        tell the listeners."""
        run = await self._runs.last_run(sender)
        new = NewMessage(
            sender=self.rules.named(sender),
            receiver=self.rules.named(receiver),
            text=self._redact(defuse(text, self.rules.max_chars + 1000)),
            kind=kind,
            state="refused" if why else "queued",
            why=self._redact(why),
            sender_run=run.id if run is not None and run.ended_at is None else None,
            task_id=task_id,
        )
        message = await self._messages.add_message(new)
        held = _HELD.get()
        if held is not None:  # told once the weighing is let go
            held.append(message)
        else:
            await self._tell(message)
        return message

    def redacted(self, text: str) -> str:
        """``text`` with every secret the redactor knows taken out, as it is recorded."""
        return self._redact(text)

    async def settle(self, message_id: int, *, run_id: int | None = None, why: str = "") -> bool:
        """Mark a queued message delivered (into ``run_id``), or refused when ``why`` is
        given; whether it was (once only), the listeners told and its waiters woken."""
        if why:  # a launch's failure, say, may quote what it was given
            done = await self._messages.refused(message_id, self._redact(why))
        else:
            done = await self._messages.delivered(message_id, run_id)
        if done:
            found = await self._messages.message(message_id)
            if found is not None:
                await self._tell(found)
            event = self._settled.get(message_id)
            if event is not None:
                event.set()
        return done

    async def tasks_waiting(self, receiver: str | None = None) -> list[MessageRecord]:
        """The tasks handed on that wait for ``receiver`` (anyone's: ``None``) to be free."""
        return await self._messages.tasks_waiting(receiver)

    async def message(self, message_id: int) -> MessageRecord | None:
        """Message ``message_id`` as it is now, or ``None``."""
        return await self._messages.message(message_id)

    async def wait_for(self, message_id: int, seconds: float) -> MessageRecord:
        """Message ``message_id`` once delivered or refused, or as it is after ``seconds``
        (at most :data:`MAX_WAIT`)."""
        event = self._settled.setdefault(message_id, asyncio.Event())
        try:
            found = await self._messages.message(message_id)
            if found is not None and found.state == "queued" and seconds > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(seconds, MAX_WAIT))
                found = await self._messages.message(message_id)
        finally:
            if self._settled.get(message_id) is event:
                del self._settled[message_id]
        if found is None:
            raise PeerRefusal(f"no message {message_id}")
        return found

    # -- delivering --------------------------------------------------------------------

    async def deliver(self, receiver: str) -> int:
        """Deliver what waits for ``receiver``, oldest first, stopping at the first it
        cannot take now; how many were delivered."""
        lock = self._locks.setdefault(receiver, asyncio.Lock())
        delivered = 0
        async with lock:
            for message in await self._messages.queued_for(receiver):
                if message.kind == "task":  # a task's start is the register's
                    continue
                outcome = await self._deliver_one(message)
                if outcome is None:
                    break
                delivered += outcome
        return delivered

    async def _deliver_one(self, message: MessageRecord) -> int | None:
        """1 when ``message`` went into its receiver's session, 0 when it was settled
        otherwise, ``None`` when it still waits (and so does every later one)."""
        receiver = message.receiver
        # The sender's right is read as it is now: a reload, or the restart this delivery
        # follows, may have taken the receiver from its peers or the sender from the roster.
        lost = await self.rules.reach(message.sender, receiver, later=True)
        if lost is not None:
            await self.settle(message.id, why=f"not delivered: {lost}")
            return 0
        try:
            spec = await self._fleet.spec(receiver)
            framed = await self.framed(message)
        except FleetError as exc:  # the receiver left the roster meanwhile
            await self.settle(message.id, why=f"not delivered: {exc}")
            return 0
        by = f"agent {message.sender}"
        # Only into a run that is live: the fleet's ``send`` to a headless CLI that does not
        # run would launch a run resuming its session past the admission (its budgets, its
        # quote, the concurrency caps) — a message never starts anything but through it.
        if await self._running(receiver):
            try:
                await self._fleet.send(receiver, framed, by=by)
            except AgentNotRunning:
                return None  # still working on its last prompt: at its turn's end
            except FleetError as exc:
                log.info("message %s to %s not sent now: %s", message.id, receiver, exc)
                return None
            return await self._delivered(message)
        if spec.wake != "start":
            return None  # kept until it runs
        request = LaunchRequest(agent=receiver, prompt=framed, by=by, origin="peer")
        try:
            admitted: Admitted = await self._admission.admit(request)
        except FleetError as exc:  # its launch failed: said as the admission's refusal
            admitted = Refused(f"{exc}")
        if isinstance(admitted, Refused):
            await self.settle(message.id, why=f"{receiver} could not start: {admitted.why}")
            return 0
        if isinstance(admitted, Started) and admitted.outcome.started:
            return await self._delivered(message)
        return None  # waits for a slot, or it runs already: tried at its next turn

    async def _delivered(self, message: MessageRecord) -> int:
        run = await self._runs.last_run(message.receiver)
        return int(await self.settle(message.id, run_id=run.id if run is not None else None))

    async def framed(self, message: MessageRecord) -> str:
        """``message`` as its receiver reads it (:func:`fleet.peers.framing.frame`)."""
        spec = await self._fleet.spec(message.sender)
        what = "message" if message.kind == "message" else message.kind
        number = message.task_id if message.kind == "task" and message.task_id else message.id
        return frame(
            what, number, message.sender, message.text, runtime=spec.runtime, host=spec.host
        )

    async def _running(self, name: str) -> bool:
        run = await self._runs.last_run(name)
        return run is not None and run.ended_at is None

    # -- when to try -------------------------------------------------------------------

    async def start(self) -> None:
        """Deliver what waited while Fleetwarden was away (each receiver in turn)."""
        await self.sweep()

    async def sweep(self) -> None:
        """Try every receiver a message waits for, in the background (after a reload too:
        a message to an agent no longer its sender's peer is refused, saying so)."""
        for receiver in await self._messages.receivers_waited_for():
            self._soon(receiver)

    async def hear(self, event: FleetEvent) -> None:
        """A fleet listener: a run that starts takes what waited for it; any run that
        starts or ends may free a slot for a receiver to be started; a live session whose
        turn ended takes its next message."""
        if event.kind in (EventKind.STARTED, EventKind.REATTACHED, EventKind.ENDED):
            await self.sweep()
        elif event.kind is EventKind.TURN_OVER:
            self._soon(event.agent)  # as :meth:`turn_over`

    async def turn_over(self, agent: str, run_id: int) -> None:
        """A live session's turn ended: the next message for it goes in."""
        self._soon(agent)

    def _soon(self, receiver: str) -> None:
        """Deliver to ``receiver`` in a task of its own: a run's start or end, or a turn's
        end, is still being told (the agent's lock may be held), and waits for nothing."""
        if self._stopped:
            return
        task = asyncio.create_task(self._try(receiver), name=f"deliver-{receiver}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _try(self, receiver: str) -> int:
        try:
            return await self.deliver(receiver)
        except Exception:  # the messages stay queued, tried again at the next chance
            log.exception("could not deliver the messages waiting for %s", receiver)
            return 0

    async def settled(self) -> None:
        """Once the deliveries under way now are done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Stop delivering; what waits stays queued in the ledger for the next start."""
        self._stopped = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def tell(self, message: MessageRecord) -> None:
        """Give ``message``, recorded elsewhere (a review's verdict), to the listeners."""
        await self._tell(message)

    async def _tell(self, message: MessageRecord) -> None:
        for listener in list(self._listeners):
            try:
                await listener(message)
            except Exception:
                log.exception("a message listener failed for message %s", message.id)
