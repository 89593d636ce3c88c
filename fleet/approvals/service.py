"""The approvals service: asks opened, answered once, told to the CLI, timed out, closed.

The ledger holds every request (:mod:`fleet.ledger.stores.operators.approvals`); this service adds
the
rules around it and the two ways out:

* **listeners** (the bot) hear of each request opened and each one answered, timed out or
  closed, to show it in chat and edit the message there;
* a **deliverer** per channel (``claude-stream``, ``codex-app-server``, ``hook``, …: the
  session driver or the hook endpoint) tells the CLI the outcome in its own terms, for the
  ask the request showed only (its digest, :mod:`fleet.approvals.binding`), never for
  another the CLI asked since under the same id. A request is marked delivered once its
  deliverer returned; one answered while nobody could deliver it (the orchestrator
  restarted in between) is delivered when its channel is registered again
  (:meth:`Approvals.register`).

Who may answer is the bot's business (operators and the agent's starter); this service
records who did. The first answer wins; a later one gets :class:`AlreadyAnswered`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from fleet.approvals.binding import MAX_SUBJECT, as_shown, request_digest
from fleet.errors import FleetError
from fleet.ledger.records.approvals import (
    ApprovalPost,
    ApprovalRequest,
    ApprovalState,
    Ask,
    AskKind,
    Decision,
    LearnedRule,
    ask_digest,
)
from fleet.permissions.rules import first_match, first_refusal, portable_tool
from fleet.timing.clock import Clock

if TYPE_CHECKING:
    from fleet.ledger.stores.operators.approvals import ApprovalsStore

log = logging.getLogger(__name__)

WITHDRAWN_COOLDOWN = timedelta(minutes=5)
"""How long an ask the CLI withdrew still counts against the agent's cap of open requests:
opening and withdrawing asks in a loop cannot alert the operator past the cap."""
_COOLDOWN_MINUTES = int(WITHDRAWN_COOLDOWN.total_seconds()) // 60
CLOSED = "closed"  # how a request ended with its run
WITHDRAWN = "withdrawn"  # how a request ended that its CLI withdrew (or asked over)
_NOT_DELIVERED = (CLOSED, WITHDRAWN)  # ended with nobody to tell


class UnknownApproval(FleetError):
    """No request has that id."""


class AlreadyAnswered(FleetError):
    """The request was answered (or timed out, or closed) before this answer."""


@dataclass(frozen=True, slots=True)
class ApprovalEvent:
    """A request opened (``opened``) or ended (its state says how)."""

    request: ApprovalRequest
    opened: bool


Listener = Callable[[ApprovalEvent], Awaitable[None]]
Deliverer = Callable[[ApprovalRequest], Awaitable[None]]


class Approvals:
    """Every approval request of this Fleetwarden, kept in the ledger's ``approvals``."""

    def __init__(self, approvals: ApprovalsStore, clock: Clock) -> None:
        self._approvals = approvals
        self._clock = clock
        self._listeners: list[Listener] = []
        self._deliverers: dict[str, Deliverer] = {}
        self._waiters: dict[str, list[asyncio.Future[ApprovalRequest]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def register(self, channel: str, deliver: Deliverer) -> None:
        """``deliver`` tells CLIs on ``channel`` their answers from now on. Answers given
        while no deliverer was there are not delivered here: the driver that reattaches to
        a run delivers them (:meth:`undelivered`)."""
        self._deliverers[channel] = deliver

    # -- asking ------------------------------------------------------------------------

    async def open(
        self,
        *,
        agent: str,
        run_id: int,
        channel: str,
        ask: Ask,
        wait_seconds: float,
        max_open: int,
        starter: str | None,
        rules: tuple[str, ...] = (),
        deny: tuple[str, ...] = (),
        ruled: bool = True,
    ) -> ApprovalRequest:
        """Record ``ask`` and tell the listeners; the same ask of the same run again (read
        twice after a restart) returns the request it already is, told to nobody.

        An ask matching one of ``deny`` is denied at once (``how`` = ``rule``), whatever
        allows it; else one matching ``rules`` or a rule an ``always`` answer taught the
        agent is allowed at once (``how`` = ``rule``); an agent with ``max_open`` requests open
        already (those its CLI withdrew in the last :data:`WITHDRAWN_COOLDOWN` counted too)
        gets this one denied at once (``how`` = ``policy``), with a reason its model sees, and
        so does an ask too long to be shown whole. Either way the request is delivered like
        an answered one.

        The pattern an ``always`` would teach is kept only when it is a rule for the ask's
        own tool that matches what was asked; else it becomes the exact rule of the ask (or
        none): what the alert shows is what ``always`` stores.

        ``ruled=False`` (Fleetwarden's own asks, the ``spend`` channel): no rule, learned
        rule or cap decides it; it waits for a person."""
        now = self._clock.now()
        length = len(ask.subject)  # one too long is kept cut, and denied below
        ask = as_shown(ask)
        async with self._lock(agent):  # the cap counts what is open: one ask at a time
            digest = ask_digest(ask)
            asked = await self._approvals.approvals_by_native(run_id, channel, ask.native_id)
            for earlier in asked:
                if request_digest(earlier) == digest:  # read twice (a restart): the same request
                    return earlier
            for earlier in asked:  # the same id asks something else now: a new ask
                if earlier.state.is_open:
                    why = "the agent asked something else under the same id"
                    await self._close(earlier, why, deliver=False, how=WITHDRAWN)
            decided: tuple[ApprovalState, str | None, str | None]
            if length > MAX_SUBJECT:
                decided = (
                    ApprovalState.DENIED,
                    "policy",
                    f"the {_noun(ask)} is {length:,} characters long, more than the "
                    f"{MAX_SUBJECT:,} an operator can be shown whole; split it into shorter ones",
                )
            elif not ruled:
                decided = (ApprovalState.OPEN, None, None)
            else:
                decided = await self._decide(agent, ask, max_open, rules, deny)
            state, how, reason = decided
            request, new = await self._approvals.open_approval(
                agent=agent,
                run_id=run_id,
                channel=channel,
                ask=ask,
                deadline=now + timedelta(seconds=wait_seconds),
                starter=starter,
                state=state,
                how=how,
                reason=reason,
            )
        if not new:
            return request
        await self._tell(ApprovalEvent(request, opened=True))
        if not request.state.is_open:
            await self._deliver(request)
        return request

    async def _decide(
        self, agent: str, ask: Ask, max_open: int, rules: tuple[str, ...], deny: tuple[str, ...]
    ) -> tuple[ApprovalState, str | None, str | None]:
        """How ``ask`` is decided at once by the rules or the cap (state, how, reason), or
        left open for the operator."""
        learned = tuple(await self._approvals.approval_rules(agent))
        permission = ask.kind is AskKind.PERMISSION
        refused = first_refusal(deny, ask.tool, ask.subject) if permission else None
        if refused is not None:  # a deny wins over every allow, as in the CLIs' own rules
            return ApprovalState.DENIED, "rule", f"refused by the rule {refused}"
        matched = first_match((*rules, *learned), ask.tool, ask.subject)
        if matched is not None and permission:
            return ApprovalState.ALLOWED, "rule", f"matches the rule {matched}"
        waiting = len(await self._approvals.open_approvals(agent))
        since = self._clock.now() - WITHDRAWN_COOLDOWN
        if waiting + await self._approvals.withdrawn_since(agent, since) >= max_open:
            return (
                ApprovalState.DENIED,
                "policy",
                f"{max_open} requests of this agent already wait for the operator (or were "
                f"withdrawn in the last {_COOLDOWN_MINUTES} min); wait for their answers "
                "before asking again",
            )
        return ApprovalState.OPEN, None, None

    def _lock(self, agent: str) -> asyncio.Lock:
        return self._locks.setdefault(agent, asyncio.Lock())

    # -- answering ---------------------------------------------------------------------

    async def answer(
        self,
        request_id: str,
        *,
        by: str,
        decision: Decision,
        how: str,
        reason: str | None = None,
    ) -> ApprovalRequest:
        """Answer an open request; the first answer wins. Raises :class:`UnknownApproval`
        or :class:`AlreadyAnswered` (its message says by whom and when, or why closed)."""
        state = ApprovalState.DENIED if decision is Decision.DENY else ApprovalState.ALLOWED
        request, won = await self._approvals.answer_approval(
            request_id.lower(), state=state, decision=decision, by=by, how=how, reason=reason
        )
        if request is None:
            raise UnknownApproval(f"no approval request {request_id!r}: `pending` lists them")
        if not won:
            raise AlreadyAnswered(closed_words(request))
        if decision is Decision.ALWAYS and request.pattern:
            await self._approvals.add_approval_rule(request.agent, request.pattern, by)
        await self._ended(request)
        return request

    async def expire(self) -> list[ApprovalRequest]:
        """Deny every open request past its deadline, as a timeout; those it ended."""
        now = self._clock.now()
        ended = []
        for request in await self._approvals.open_approvals():
            if not request.expired(now):
                continue
            reason = f"nobody answered within {_span(request)}; denied as a timeout"
            done, won = await self._approvals.answer_approval(
                request.id,
                state=ApprovalState.TIMED_OUT,
                decision=Decision.DENY,
                by=None,
                how="timeout",
                reason=reason,
            )
            if won and done is not None:
                await self._ended(done)
                ended.append(done)
        return ended

    async def close_run(self, run_id: int, why: str) -> list[ApprovalRequest]:
        """Close every open request of a run that ended (or whose CLI died asking)."""
        closed = []
        for request in await self._approvals.approvals_of_run(run_id):
            if request.state.is_open:
                done = await self._close(request, why)
                if done is not None:
                    closed.append(done)
        return closed

    async def withdraw(self, run_id: int, channel: str, native_id: str, why: str) -> None:
        """The CLI withdrew its ask: close it, telling nobody but chat. It still counts
        against the agent's cap of open requests for :data:`WITHDRAWN_COOLDOWN`."""
        for request in await self._approvals.approvals_by_native(run_id, channel, native_id):
            if request.state.is_open:
                await self._close(request, why, deliver=False, how=WITHDRAWN)

    # -- reading -----------------------------------------------------------------------

    async def get(self, request_id: str) -> ApprovalRequest:
        request = await self._approvals.approval(request_id)
        if request is None:
            raise UnknownApproval(f"no approval request {request_id!r}: `pending` lists them")
        return request

    async def pending(self, agent: str | None = None) -> list[ApprovalRequest]:
        return await self._approvals.open_approvals(agent)

    async def waiting(self, agent: str) -> bool:
        """Whether ``agent`` waits for an answer (the watchdog then never calls it stalled)."""
        return bool(await self._approvals.open_approvals(agent))

    async def learned_rules(self, agent: str) -> list[LearnedRule]:
        """The rules ``always`` answers taught ``agent``: who taught each, and when."""
        return await self._approvals.learned_rules(agent)

    async def forget_rules(self, agent: str, pattern: str | None = None) -> int:
        """Forget the rule ``pattern`` taught ``agent`` (``None``: every one); how many."""
        return await self._approvals.forget_approval_rules(agent, pattern)

    async def undelivered(self, run_id: int) -> list[ApprovalRequest]:
        """Requests of ``run_id`` answered but not yet told to the CLI."""
        return [
            r
            for r in await self._approvals.approvals_of_run(run_id)
            if not r.state.is_open and r.delivered_at is None and r.how not in _NOT_DELIVERED
        ]

    async def mark_delivered(self, request_id: str) -> None:
        await self._approvals.mark_approval_delivered(request_id)

    async def wait(self, request_id: str) -> ApprovalRequest:
        """Return once the request is no longer open (at once if it is not)."""
        request = await self.get(request_id)
        if not request.state.is_open:
            return request
        future: asyncio.Future[ApprovalRequest] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(request.id, []).append(future)
        try:
            # Read again: an answer may have landed between the read and the wait.
            again = await self.get(request_id)
            if not again.state.is_open:
                return again
            return await future
        finally:
            waiters = self._waiters.get(request.id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(request.id, None)

    # -- chat places -------------------------------------------------------------------

    async def record_post(self, post: ApprovalPost) -> None:
        await self._approvals.record_approval_post(post)

    async def posts(self, request_id: str) -> list[ApprovalPost]:
        return await self._approvals.approval_posts(request_id)

    async def post_at(self, connector: str, event_id: str) -> ApprovalRequest | None:
        """The request shown by message ``event_id`` of ``connector``, if it is one."""
        return await self._approvals.approval_shown_by(connector, event_id)

    # -- inside ------------------------------------------------------------------------

    async def _close(
        self, request: ApprovalRequest, why: str, *, deliver: bool = True, how: str = CLOSED
    ) -> ApprovalRequest | None:
        done, won = await self._approvals.answer_approval(
            request.id,
            state=ApprovalState.CLOSED,
            decision=Decision.DENY,
            by=None,
            how=how,
            reason=why,
        )
        if not won or done is None:
            return None
        for future in self._waiters.get(done.id, []):
            if not future.done():
                future.set_result(done)
        await self._tell(ApprovalEvent(done, opened=False))
        return done

    async def _ended(self, request: ApprovalRequest) -> None:
        for future in self._waiters.get(request.id, []):
            if not future.done():
                future.set_result(request)
        await self._deliver(request)
        await self._tell(ApprovalEvent(request, opened=False))

    async def _deliver(self, request: ApprovalRequest) -> None:
        deliver = self._deliverers.get(request.channel)
        if deliver is None:
            log.info(
                "approval %s answered; its channel %s will get it", request.id, request.channel
            )
            return
        try:
            await deliver(request)
        except Exception:  # the CLI may be gone; the answer stays recorded
            log.exception("could not tell %s the answer to approval %s", request.agent, request.id)
            return
        await self._approvals.mark_approval_delivered(request.id)

    async def _tell(self, event: ApprovalEvent) -> None:
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception:
                log.exception("an approval listener failed on %s", event.request.id)


def _noun(ask: Ask) -> str:
    return "command" if portable_tool(ask.tool) == "Bash" else "subject"


def _span(request: ApprovalRequest) -> str:
    seconds = int((request.deadline - request.asked_at).total_seconds())
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def closed_words(request: ApprovalRequest) -> str:
    """Why an answer to ``request`` comes too late, in the operator's words."""
    at = request.answered_at.strftime("%H:%M:%S UTC") if request.answered_at else "?"
    if request.state is ApprovalState.TIMED_OUT:
        return f"approval {request.id} timed out at {at}: it was denied"
    if request.state is ApprovalState.CLOSED:
        why = request.reason or f"{request.agent} ended"
        if request.agent not in why:
            why = f"{request.agent}: {why}"
        return f"that request is closed ({why})"
    if request.how in ("rule", "policy"):
        return f"approval {request.id} was decided by {request.how} at {at}"
    what = "allowed" if request.state is ApprovalState.ALLOWED else "denied"
    return f"approval {request.id} was already answered by {request.answered_by} at {at} ({what})"
