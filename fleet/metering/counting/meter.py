"""The metering of one request in flight, from the answer's first byte to the usage event
it ends as.

A :class:`Meter` is fed the answer's chunks as the proxy relays them: it decodes a body the
upstream compressed anyway, parses a stream's events (holding back a usage chunk the agent
did not ask for) or copies a plain body up to ``MAX_BODY_COPY``, and at the end decides the
request's tokens and outcome as one :class:`~fleet.metering.counting.events.UsageEvent`. It never
touches a socket; the proxy does the I/O and prices the event.

**Every answer is counted.** A stream's deltas are counted as they pass (the length of
their text, :data:`~fleet.metering.counting.usage.DELTA_TEXT`, at the estimator's
:data:`~fleet.metering.counting.estimate.BYTES_PER_TOKEN`). A stream that does not end with its
usage — cut by the upstream, by a drain that ran out after the agent hung up, or ending
without usage or in an error — is recorded with at least that count as output, and the
request's input estimate (its body's bytes ÷ 4) when no input was reported, the reason
saying so: Anthropic reports output only at a stream's end, so the usage seen before a cut
says almost nothing of it. Why not charge the reservation instead: it is the request's own
output cap (often tens of thousands of tokens), far over what a cut answer cost, and it
would move budgets to refuse on answers that were never given.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, cast

import aiohttp
from multidict import CIMultiDictProxy

from fleet.metering.counting.estimate import BYTES_PER_TOKEN
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.metering.counting.usage import DELTA_TEXT, SKIP_PREFIXES, Api, UsageReader
from fleet.metering.wire.body import json_object
from fleet.metering.wire.sse import SseParser

MAX_BODY_COPY: Final = 32 * 1024 * 1024  # a non-streamed answer larger than this is unmetered


@dataclass(slots=True)
class Meter:
    """The metering of one request in flight."""

    at: datetime
    started: float
    agent: str
    provider: str
    api: str
    stream: bool
    requested_model: str | None = None
    rewritten_from: str | None = None
    account: str | None = None  # the account that paid for it, when one did
    body_size: int = 0  # bytes of the request's body: its input estimate when none is reported
    hide_usage_chunk: bool = False
    reason: str = ""
    status: int = 0
    ttfb: float | None = None
    request_id: str | None = None
    outcome: Outcome | None = None
    recorded: UsageEvent | None = None  # what was recorded of the answer, priced
    # Where, in what the last :meth:`take` returned, the event that completed the answer
    # starts (0 when it began in an earlier chunk or cannot be told); None when that take
    # did not complete it.
    final_at: int | None = None
    _reader: UsageReader | None = None
    _parser: SseParser | None = None
    _body: bytearray | None = None
    _inflate: Any = None  # a zlib decompressor when the upstream compressed anyway
    _gone: bool = False

    @property
    def reader(self) -> UsageReader:
        assert self._reader is not None
        return self._reader

    def start_answer(self, upstream: aiohttp.ClientResponse) -> None:
        headers: CIMultiDictProxy[str] = upstream.headers
        self.status = upstream.status
        self.request_id = headers.get("request-id") or headers.get("x-request-id")
        self._reader = UsageReader(cast(Api, self.api))  # only model requests get here
        if upstream.status >= 400:
            self._body = bytearray()
            return
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(47 if "gzip" in encoding else zlib.MAX_WBITS)
        elif encoding != "identity":
            self.reason = f"the answer is {encoding}-encoded, which the proxy cannot read"
            return
        if headers.get("content-type", "").startswith("text/event-stream"):
            skip = () if self.hide_usage_chunk else SKIP_PREFIXES[self.api]
            self._parser = SseParser(skip, count=DELTA_TEXT[self.api])
        else:
            self._body = bytearray()

    @property
    def whole(self) -> bool:
        """Whether the answer is one JSON body (not a stream): its end is known at EOF."""
        return self._parser is None and self._body is not None and self.status < 400

    def take(self, chunk: bytes) -> bytes:
        """Meter ``chunk``; return what of it the agent gets (all of it, but for a usage
        chunk the agent did not ask for)."""
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.started
        plain = chunk
        if self._inflate is not None:
            try:
                plain = self._inflate.decompress(chunk)
            except zlib.error:
                self._inflate, self._parser, self._body = None, None, None
                self.reason = "the compressed answer could not be decoded"
                return chunk
        self.final_at = None
        if self._parser is not None:
            if self._parser.broken is not None:
                return chunk
            reader = self.reader
            events = self._parser.feed(plain)
            final: bytes | None = None  # the event that completed the answer, if one did
            done = reader.complete
            hiding = self.hide_usage_chunk and self._inflate is None
            out: list[bytes] = []
            for event in events:
                reader.on_sse(event)
                if not done and reader.complete:
                    done, final = True, event.raw
                if hiding and not reader.usage_chunk:
                    out.append(event.raw)
            if not hiding:
                if final is not None:
                    self.final_at = self._located(final, chunk)
                return chunk
            if self._parser.broken is not None:
                out.append(self._parser.finish())
            joined = b"".join(out)
            if final is not None:
                self.final_at = self._located(final, joined)
            return joined
        if self._body is not None:
            if len(self._body) + len(plain) <= MAX_BODY_COPY:
                self._body += plain
            else:
                self._body = None
                self.reason = f"the answer is over {MAX_BODY_COPY} bytes"
        return chunk

    def _located(self, final: bytes, out: bytes) -> int:
        """Where the completing event ``final`` starts in ``out``: its first occurrence, so
        never after it (an identical event before it only holds back more); 0 when it began
        in an earlier chunk, or when ``out`` is compressed and no offset in it can be told."""
        if self._inflate is not None:
            return 0
        return max(out.find(final), 0)

    def eof(self) -> bytes:
        """The answer ended; return what of it is still to be passed on (the unterminated
        end of a stream whose events are passed on one by one)."""
        rest = b""
        if self._parser is not None:
            rest = self._parser.finish()
            if not self.hide_usage_chunk or self._inflate is not None:
                rest = b""  # already passed on as it came
        if self._body is not None and self.status < 400:
            self.reader.on_body(bytes(self._body))
        return rest

    def cut(self, why: str) -> None:
        self.outcome, self.reason = Outcome.PARTIAL, why

    def client_left(self) -> None:
        self._gone = True

    def drained(self, in_time: bool) -> None:
        if not in_time and not self.reader.complete:
            self.cut("the agent hung up and the upstream did not finish within the drain time")

    def finish(self) -> UsageEvent:
        reader = self.reader
        tokens = reader.tokens
        outcome, reason = self._judge(reader, tokens)
        tokens = tokens or Tokens()
        if outcome is not Outcome.OK and self._parser is not None and self.status < 400:
            tokens, reason = self._at_least(tokens, reason)
        return self._event(
            self.status,
            outcome,
            reason,
            tokens,
            served=reader.served_model,
            partial=outcome is Outcome.PARTIAL,
        )

    def _at_least(self, tokens: Tokens, reason: str) -> tuple[Tokens, str]:
        """``tokens`` raised to what passed: the deltas' output, the input estimate."""
        assert self._parser is not None
        counted = -(-self._parser.counted // BYTES_PER_TOKEN)
        floor = replace(tokens, output=max(tokens.output, counted))
        said: list[str] = []
        if floor.output > tokens.output:
            said.append(f"output counted from the deltas that passed ({counted} tokens)")
        if tokens.input + tokens.cache_read + tokens.cache_write == 0 and self.body_size:
            floor = replace(floor, input=self.body_size // BYTES_PER_TOKEN)
            said.append(f"input estimated from the request's {self.body_size} bytes")
        if not said:
            return tokens, reason
        return floor, "; ".join([reason, *said]) if reason else "; ".join(said)

    def _judge(self, reader: UsageReader, tokens: Tokens | None) -> tuple[Outcome, str]:
        gone = "; the agent hung up mid-answer and the rest was drained" if self._gone else ""
        if self.status >= 400:
            detail = _error_detail(bytes(self._body or b""))
            return Outcome.UPSTREAM_ERROR, f"upstream answered {self.status}{detail}"
        if self.outcome is Outcome.PARTIAL:
            return Outcome.PARTIAL, self.reason + gone
        if self._parser is not None and self._parser.broken is not None:
            return Outcome.UNMETERED, f"malformed stream: {self._parser.broken}"
        if reader.failure is not None:
            return Outcome.UPSTREAM_ERROR, f"the provider reported an error: {reader.failure}"
        if tokens is None or reader.problem is not None:
            why = reader.problem or self.reason or "the answer carried no usage"
            return Outcome.UNMETERED, why
        if not reader.complete:
            return Outcome.PARTIAL, "the answer ended before its final event" + gone
        return Outcome.OK, (self.reason + gone).lstrip("; ")

    def refused(self, status: int, why: str) -> UsageEvent:
        return self._event(status, Outcome.REFUSED, why, Tokens())

    def failed(self, status: int, outcome: Outcome, why: str) -> UsageEvent:
        return self._event(status, outcome, why, Tokens())

    def _event(
        self,
        status: int,
        outcome: Outcome,
        reason: str,
        tokens: Tokens,
        *,
        served: str | None = None,
        partial: bool = False,
    ) -> UsageEvent:
        elapsed = time.perf_counter() - self.started
        return UsageEvent(
            at=self.at,
            agent=self.agent,
            provider=self.provider,
            api=self.api,
            requested_model=self.requested_model,
            served_model=served,
            tokens=tokens,
            stream=self.stream,
            status=status,
            outcome=outcome,
            latency_ms=round(elapsed * 1000, 3),
            ttfb_ms=None if self.ttfb is None else round(self.ttfb * 1000, 3),
            request_id=self.request_id,
            partial=partial,
            reason=reason,
            rewritten_from=self.rewritten_from,
        )


def _error_detail(body: bytes) -> str:
    """``: <type>: <message>`` from a provider's error body, if it has one."""
    payload = json_object(body, limit=65536)
    error = payload.get("error") if payload else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error[key]) for key in ("type", "message") if error.get(key)]
    return (": " + ": ".join(parts))[:240] if parts else ""
