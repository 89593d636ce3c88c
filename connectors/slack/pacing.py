"""Posting to Slack at the pace it takes: one message a second per channel, edits
throttled, ``ratelimited`` waited out and retried — never an error for the caller.

Slack allows ``chat.postMessage`` about once a second per channel (a thread counts against
its channel) and answers faster posts ``ratelimited`` (HTTP 429) with a ``Retry-After``.
:class:`Pacer` keeps one queue per channel, worked by one task: each post waits its turn,
at least :data:`POST_INTERVAL` after the channel's last, and a ``ratelimited`` answer is
waited out (its ``Retry-After``) and the same post sent again. When posts back up (fifty
agents talking at once, each in its thread), the plain ones waiting for the same thread
are merged into one message, up to the limit of one, so a busy fleet reads as one message
a second per channel rather than a flood, and a thread's lines keep their order; each
caller learns the ts of the message that holds its words.

Edits (``chat.update``, Slack's tier 3) pass one at a time, at least :data:`EDIT_INTERVAL`
apart; an edit of a message whose last edit is still waiting replaces it (the last text
wins, and every caller learns how that one went).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from connectors.errors import ConnectorError
from connectors.inbox import cancel_and_wait

log = logging.getLogger(__name__)

POST_INTERVAL: Final = 1.05
"""Seconds between two posts to one channel: Slack's one a second, and a little room."""
EDIT_INTERVAL: Final = 1.2
"""Seconds between two edits: within tier 3's ~50 a minute."""
RETRY_AFTER_DEFAULT: Final = 1.0
"""Seconds waited after a ``ratelimited`` answer that names no ``Retry-After``."""
RETRY_AFTER_MOST: Final = 120.0
"""The longest wait one ``ratelimited`` answer can impose before the post is sent again."""
RATE_LIMIT_TRIES: Final = 20
"""How many ``ratelimited`` answers in a row one post waits out before it fails."""

Call = Callable[[str, dict[str, Any]], Awaitable[Mapping[str, Any]]]
"""Call a Web API method with arguments: its answer, or :class:`SlackRefused`."""


class SlackRefused(ConnectorError):
    """Slack answered ``ok: false`` (``error``), or the HTTP status said so."""

    def __init__(
        self, method: str, error: str, retry_after: float | None = None, needed: str = ""
    ) -> None:
        scope = f" (the app needs the scope {needed}: add it and reinstall)" if needed else ""
        super().__init__(f"slack: {method} refused: {error}{scope}")
        self.method = method
        self.error = error
        self.retry_after = retry_after
        self.needed = needed


@dataclass(slots=True, eq=False)
class Post:
    """One message to post: its ``chat.postMessage`` arguments; ``mergeable`` when it is
    plain text another plain post to the same thread may join."""

    channel: str
    args: dict[str, Any]
    text: str
    mergeable: bool
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(slots=True)
class _Line:
    """One channel's posts waiting their turn."""

    posts: deque[Post] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _Edit:
    args: dict[str, Any]
    waiting: list[asyncio.Future[None]]


class Pacer:
    """The paced posts and edits of one connector."""

    def __init__(
        self,
        call: Call,
        *,
        limit: int,
        render: Callable[[str], dict[str, Any]],
        post_interval: float = POST_INTERVAL,
        edit_interval: float = EDIT_INTERVAL,
    ) -> None:
        """``limit``: the most characters a message holds; ``render``: a merged text's
        message arguments (its blocks) besides channel and thread."""
        self._call = call
        self._limit = limit
        self._render = render
        self._post_interval = post_interval
        self._edit_interval = edit_interval
        self._queues: dict[str, _Line] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._edits: OrderedDict[tuple[str, str], _Edit] = OrderedDict()
        self._edits_ready = asyncio.Event()
        self._editor: asyncio.Task[None] | None = None
        self._closed = False

    def submit(self, post: Post) -> asyncio.Future[str]:
        """Queue ``post`` in its channel, behind what is queued there: the future of the ts
        of the message holding it (several posts merged share one)."""
        self._open()
        line = self._queues.get(post.channel)
        if line is None:
            line = self._queues[post.channel] = _Line()
            self._workers[post.channel] = asyncio.create_task(
                self._work(line), name=f"slack-post-{post.channel}"
            )
        line.posts.append(post)
        line.ready.set()
        return post.done

    async def edit(self, channel: str, ts: str, args: dict[str, Any]) -> None:
        """``chat.update`` of message ``ts`` with ``args``, in turn; a waiting edit of the
        same message is replaced by this one. Raises what Slack refused."""
        self._open()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = (channel, ts)
        pending = self._edits.get(key)
        if pending is None:
            self._edits[key] = _Edit(args, [waiter])
        else:
            pending.args = args
            pending.waiting.append(waiter)
        self._edits_ready.set()
        if self._editor is None:
            self._editor = asyncio.create_task(self._edit_loop(), name="slack-edits")
        await waiter

    async def close(self) -> None:
        """Stop posting: what waits fails with a :class:`ConnectorError`."""
        self._closed = True
        tasks = [*self._workers.values(), *([self._editor] if self._editor else [])]
        self._workers.clear()
        self._editor = None
        for task in tasks:
            await cancel_and_wait(task)
        stopped = ConnectorError("slack: the connector stopped before this was posted")
        for line in self._queues.values():
            while line.posts:
                _fail(line.posts.popleft().done, stopped)
        for pending in self._edits.values():
            for waiter in pending.waiting:
                _fail(waiter, stopped)
        self._edits.clear()

    def _open(self) -> None:
        if self._closed:
            raise ConnectorError("slack: the connector is stopped")

    # --- posts ------------------------------------------------------------------------

    async def _work(self, line: _Line) -> None:
        loop = asyncio.get_running_loop()
        ready_at = 0.0
        while True:
            while not line.posts:
                line.ready.clear()
                await line.ready.wait()
            first = line.posts.popleft()
            wait = ready_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # what comes meanwhile may join ``first``
            batch = [first, *self._joining(first, line.posts)]
            if len(batch) > 1:
                text = "\n".join(each.text for each in batch)
                args = {**first.args, **self._render(text)}
            else:
                args = first.args
            try:
                answer = await self.patient("chat.postMessage", args)
            except ConnectorError as exc:
                for each in batch:
                    _fail(each.done, exc)
            except Exception as exc:  # a bug or the network: the callers learn it
                for each in batch:
                    _fail(each.done, ConnectorError(f"slack: posting failed: {exc}"))
            else:
                ts = str(answer.get("ts", ""))
                for each in batch:
                    if not each.done.done():
                        each.done.set_result(ts)
            ready_at = loop.time() + self._post_interval

    def _joining(self, first: Post, waiting: deque[Post]) -> list[Post]:
        """The posts waiting behind ``first`` that join it: the plain ones to the same
        thread (or the channel itself), in their order, while the merged text fits one
        message — up to the first of that thread that cannot join. Posts to other threads
        keep their places: their own turn merges them alike."""
        if not first.mergeable:
            return []
        joined: list[Post] = []
        size = len(first.text)
        thread = first.args.get("thread_ts")
        for post in list(waiting):
            if post.args.get("thread_ts") != thread:
                continue
            if not post.mergeable or size + 1 + len(post.text) > self._limit:
                break
            joined.append(post)
            size += 1 + len(post.text)
        for post in joined:
            waiting.remove(post)
        return joined

    # --- edits ------------------------------------------------------------------------

    async def _edit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ready_at = 0.0
        while True:
            await self._edits_ready.wait()
            if not self._edits:
                self._edits_ready.clear()
                continue
            wait = ready_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            (channel, ts), pending = self._edits.popitem(last=False)
            try:
                await self.patient("chat.update", {"channel": channel, "ts": ts, **pending.args})
            except Exception as exc:
                error = exc if isinstance(exc, ConnectorError) else ConnectorError(str(exc))
                for waiter in pending.waiting:
                    _fail(waiter, error)
            else:
                for waiter in pending.waiting:
                    if not waiter.done():
                        waiter.set_result(None)
            ready_at = loop.time() + self._edit_interval

    # --- rate limits ------------------------------------------------------------------

    async def patient(self, method: str, args: dict[str, Any]) -> Mapping[str, Any]:
        """Call ``method``, waiting out each ``ratelimited`` answer as it asks."""
        for _ in range(RATE_LIMIT_TRIES):
            try:
                return await self._call(method, args)
            except SlackRefused as exc:
                if exc.error != "ratelimited":
                    raise
                wait = min(exc.retry_after or RETRY_AFTER_DEFAULT, RETRY_AFTER_MOST)
                log.info("slack: %s rate limited; sending again in %.1f s", method, wait)
                await asyncio.sleep(wait)
        raise ConnectorError(f"slack: {method} still rate limited after {RATE_LIMIT_TRIES} waits")


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
