"""What agents say to each other, told in chat: each message a notice in both agents'
threads (:mod:`bot.render.agents.peers` writes it), a flood between two agents folded.

The postbox calls :meth:`PeerTraffic.heard` with each message it records (queued or
refused) and each it delivers. The rule, one notice per piece of news:

* a message is told once, in full, when it is first heard of — queued (or already
  delivered, when that is the first word of it): ``coder → reviewer:`` and its text quoted;
* a refusal is told when it is recorded, or when a queued message is refused later:
  ``coder → ops refused: WHY``;
* a delivery is told only when the message waited for it, :data:`WAITED` or longer after it
  was sent (its receiver was busy): ``coder → reviewer (delivered after 4 min): “…”``. The
  ordinary pair — sent, then delivered at once — is one notice; ``msgs`` shows every
  receipt.

Each notice goes into the threads of both agents (the sender's and the receiver's, when
the receiver is an agent), on every connector; a connector where neither has a thread gets
it in its home room (:class:`~bot.chat.notifier.Notifier`). A flood must not flood chat:
notices about one pair of agents (either way), and one agent's refusals whoever it named,
are at least :attr:`FoldSettings.gap` apart;
what comes within the gap waits and goes out as one notice when it ends, the newest
:attr:`FoldSettings.shown` shown and the earlier ones counted (``msgs`` lists them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from bot.render.agents import peers as render
from fleet.ledger.records.peers import MessageRecord
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.names import is_agent_name
from fleet.notices import Delivery, Notice, Tone
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

Post = Callable[[Notice], Awaitable[Delivery]]
Verdicts = Callable[[MessageRecord], Awaitable[str | None]]
"""A review's verdict in a word (``approve``, ``changes``) and where it went (``, to a
human``; ``, back to coder``), from the message that carries it."""
Sleep = Callable[[float], Awaitable[None]]
WAITED: Final = timedelta(seconds=60)
"""A delivery this long (or longer) after its message was sent is told: it waited."""
_REMEMBERED: Final = 4096  # message ids told, the newest kept


@dataclass(frozen=True, slots=True)
class FoldSettings:
    gap: float = 10.0  # seconds at least between two notices about one pair of agents
    shown: int = 3  # notices of a folded batch shown; the earlier ones are counted


@dataclass(frozen=True, slots=True)
class _Told:
    """One notice's words, its tone and the agents whose threads it goes into."""

    markdown: str
    tone: Tone | None
    agents: tuple[str, ...]


@dataclass(slots=True)
class _Pair:
    """The notices about one pair of agents (or one agent's refusals): when the last went
    out, what waits."""

    sender: str  # of the first message held: the one ``msgs`` is suggested for
    receiver: str | None  # None: the pair is the sender's refusals, whoever they named
    last_post: float = float("-inf")
    held: list[_Told] = field(default_factory=list)
    left_out: int = 0
    flush: asyncio.Task[None] | None = None


def _key(record: MessageRecord) -> tuple[str, str]:
    """Whose notices fold together: a pair of agents, either way; a sender's refusals all
    together, whoever it named (a name an agent typed need be no agent's, and there are
    as many as it likes)."""
    if record.state == "refused":
        return ("!refused", record.sender)  # "!" starts no agent's name
    first, second = sorted((record.sender, record.receiver))
    return (first, second)


def news(
    record: MessageRecord, told: bool, verdict: str | None = None
) -> tuple[str, Tone | None] | None:
    """What ``record`` tells (its markdown and tone), or ``None`` when it tells nothing
    new; ``told``: whether its message was told before (the module's rule); ``verdict``:
    a review's, when it is known."""
    if record.state == "refused":
        return render.refused_notice(record), "warning"
    if not told:
        return render.sent_notice(record, verdict), None
    at = record.delivered_at
    if record.state == "delivered" and at is not None and at - record.sent_at >= WAITED:
        return render.delivered_notice(record), "ok"
    return None


_VERDICTS: Final[dict[str, str]] = {"approved": "approve", "changes": "changes"}


def verdicts_of(reviews: ReviewsStore) -> Verdicts:
    """A review message's verdict, read from the ledger: the newest round of its task's
    review by its sender, once answered (``None`` before, or for a message of no task)."""

    async def verdict(record: MessageRecord) -> str | None:
        if record.task_id is None:
            return None
        for review in reversed(await reviews.of_task(record.task_id)):
            if review.reviewer == record.sender:
                word = _VERDICTS.get(review.state)
                if word is None:
                    return None
                # Where the verdict went: an approval, or the last round's changes, ends
                # the rounds and the work is a human's; the coder is not told.
                ended = review.state == "approved" or review.last_round
                return f"{word}, to a human" if ended else f"{word}, back to {review.coder}"
        return None

    return verdict


class PeerTraffic:
    """Listens to the postbox and posts what agents say to each other (see the module)."""

    def __init__(
        self,
        post: Post,
        clock: Clock,
        settings: FoldSettings | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        verdicts: Verdicts | None = None,
    ) -> None:
        """``verdicts``: a review's verdict, told with it (none: ``review:`` alone)."""
        self._post = post
        self._verdicts = verdicts
        self._clock = clock
        self._settings = settings or FoldSettings()
        self._sleep = sleep
        self._told: dict[int, None] = {}  # ordered: the oldest forgotten first
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._stopped = False

    async def heard(self, record: MessageRecord) -> None:
        """The postbox recorded or delivered ``record``: tell it, as the module says."""
        told = record.id in self._told
        said = news(record, told, await self._verdict(record, told))
        self._remember(record.id)
        if said is None or self._stopped:
            return
        agents = tuple(a for a in (record.sender, record.receiver) if is_agent_name(a))
        told_now = _Told(said[0], said[1], agents)
        key = _key(record)
        receiver = None if record.state == "refused" else record.receiver
        pair = self._pairs.setdefault(key, _Pair(record.sender, receiver))
        now = self._clock.monotonic()
        if not pair.held and now - pair.last_post >= self._settings.gap:
            pair.last_post = now
            await self._send(pair, [told_now], 0)
            return
        if not pair.held:
            pair.sender, pair.receiver = record.sender, receiver
        pair.held.append(told_now)
        if len(pair.held) > self._settings.shown:
            pair.held.pop(0)
            pair.left_out += 1
        if pair.flush is None:
            wait = max(pair.last_post + self._settings.gap - now, 0.0)
            pair.flush = asyncio.create_task(self._flush_after(pair, wait))

    async def _verdict(self, record: MessageRecord, told: bool) -> str | None:
        if self._verdicts is None or told or record.kind != "review":
            return None
        try:
            return await self._verdicts(record)
        except Exception:  # the message is told without it
            log.exception("could not read the verdict of review message %s", record.id)
            return None

    def _remember(self, message_id: int) -> None:
        self._told[message_id] = None
        if len(self._told) > _REMEMBERED:
            self._told.pop(next(iter(self._told)))

    async def _flush_after(self, pair: _Pair, wait: float) -> None:
        try:
            await self._sleep(wait)
        except asyncio.CancelledError:
            pair.flush = None
            raise
        pair.flush = None
        await self._flush(pair)

    async def _flush(self, pair: _Pair) -> None:
        held, left_out = pair.held, pair.left_out
        if not held:
            return
        pair.held, pair.left_out = [], 0
        pair.last_post = self._clock.monotonic()
        await self._send(pair, held, left_out)

    async def _send(self, pair: _Pair, said: list[_Told], left_out: int) -> None:
        tones = {told.tone for told in said}
        tone = tones.pop() if len(tones) == 1 else None
        agents = tuple(dict.fromkeys(agent for told in said for agent in told.agents))
        texts = [told.markdown for told in said]
        markdown = render.folded(texts, left_out, pair.sender, pair.receiver)
        try:
            delivery = await self._post(Notice(markdown, tone=tone, agents=agents, home_too=False))
        except Exception:  # chat is told; the ledger keeps the message whatever happens here
            log.exception("a message between %s could not be told", " and ".join(agents))
            return
        if not delivery.ok:
            log.warning("a message between agents was not told: %s", "; ".join(delivery.failed))

    async def stop(self) -> None:
        """Post what waits now, and tell nothing more."""
        self._stopped = True
        pairs = list(self._pairs.values())
        flushes = [p.flush for p in pairs if p.flush is not None]
        for task in flushes:
            task.cancel()
        await asyncio.gather(*flushes, return_exceptions=True)
        for pair in pairs:
            await self._flush(pair)
