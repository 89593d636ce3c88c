"""Passing an upstream's answer on to the agent while metering it.

Chunks are passed on as they arrive and a copy is parsed on the side
(:class:`~fleet.metering.counting.meter.Meter`). The answer's usage is committed to the ledger
before the agent gets the answer's last bytes, so killing Fleetwarden at any moment loses
no usage of an answer an agent received. The agent hanging up mid-stream does not stop
the metering: the upstream is read on (up to ``drain_timeout``) until its usage arrives.
An upstream that cuts the stream is recorded with what was seen, flagged partial, and the
agent's answer is cut too. Either way the row counts at least the deltas that passed
(:mod:`fleet.metering.counting.meter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Final

import aiohttp
from aiohttp import web

from fleet.metering.config import MeteringSettings, PriceTable
from fleet.metering.counting.events import Outcome, QuotaSignal, UsageEvent
from fleet.metering.counting.meter import Meter
from fleet.metering.counting.recorder import Recorder
from fleet.metering.wire.signals import SignalTracker
from fleet.metering.wire.upstream import HOP_BY_HOP

_NOT_RETURNED: Final = HOP_BY_HOP | {"content-length"}
_CLIENT_GONE = (ConnectionResetError, ConnectionError, aiohttp.ClientConnectionResetError)


class Relay:
    """The proxy's answer path: relay, meter, record."""

    def __init__(self, settings: MeteringSettings, recorder: Recorder, prices: PriceTable) -> None:
        self._settings = settings
        self.recorder = recorder
        self._prices = prices
        self._signals = SignalTracker()

    async def relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse, meter: Meter | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in _NOT_RETURNED:
                response.headers.add(name, value)
        if meter is None:
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        signals = self._signals.extract(
            upstream.headers, agent=meter.agent, provider=meter.provider, at=meter.at
        )
        account = meter.account
        meter.start_answer(upstream)
        if upstream.content_length is not None and not meter.hide_usage_chunk:
            response.content_length = upstream.content_length
        settled = False

        async def settle() -> None:
            """Record the answer once; one the agent is to get whole is committed first."""
            nonlocal settled
            if not settled:
                settled = True
                event = meter.recorded = self.priced(meter.finish(), account)
                if event.status < 400 and event.outcome is not Outcome.REFUSED:
                    await self.recorder.commit(event, signals)
                else:
                    self.recorder.add(event, signals)

        try:
            await response.prepare(request)
            await self._pump(request, response, upstream, meter, settle)
        finally:
            if not settled:
                settled = True
                meter.recorded = self.priced(meter.finish(), account)
                self.recorder.add(meter.recorded, signals)
        return response

    async def _pump(
        self,
        request: web.Request,
        response: web.StreamResponse,
        upstream: aiohttp.ClientResponse,
        meter: Meter,
        settle: Callable[[], Awaitable[None]],
    ) -> None:
        """Copy the answer to the agent while metering it; drain after the agent leaves.
        The answer's usage is in the ledger (``settle``) before the agent gets its last
        bytes: the event that ends a stream and what follows it (what came before it in
        the same chunk goes on first, so a fast answer's first byte does not wait for the
        commit), or — for a whole JSON answer, whose end only EOF tells — the last chunk,
        held back one read."""
        silence = _Silence(upstream, self._settings.read_timeout)
        try:
            await self._copy(request, response, upstream.content, meter, settle, silence)
        finally:
            silence.stop()

    async def _copy(
        self,
        request: web.Request,
        response: web.StreamResponse,
        content: aiohttp.StreamReader,
        meter: Meter,
        settle: Callable[[], Awaitable[None]],
        silence: _Silence,
    ) -> None:
        """:meth:`_pump`'s loop, ``silence`` told when a read waits on the upstream."""
        client = True
        drain_until = 0.0  # set when the agent has hung up
        held = b""  # a whole answer's latest chunk, passed on when the next one comes
        while True:
            try:
                if client:
                    silence.since = silence.now()
                    chunk = await content.readany()
                    silence.since = None
                else:
                    left = drain_until - time.perf_counter()
                    if left <= 0 or meter.reader.complete:
                        meter.drained(left > 0)
                        return
                    async with asyncio.timeout(left):
                        chunk = await content.readany()
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                if isinstance(exc, TimeoutError):  # aiohttp's read timeout is both
                    meter.cut(f"upstream silent for {self._settings.read_timeout:g} s")
                else:
                    meter.cut(f"upstream cut the answer ({type(exc).__name__})")
                break
            except TimeoutError:
                if client:
                    meter.cut(f"upstream silent for {self._settings.read_timeout:g} s")
                    break
                meter.drained(False)
                return
            if not chunk:
                rest = held + meter.eof()
                if client:
                    await settle()
                    with contextlib.suppress(*_CLIENT_GONE):
                        if rest:
                            await response.write(rest)
                        await response.write_eof()
                return
            out = meter.take(chunk)
            if meter.whole:
                out, held = held, out
            else:
                out, held, before = held + out, b"", len(held)
                if meter.reader.complete:
                    if meter.final_at is not None and client:
                        # What came before the final event goes on now; that event (and
                        # what follows it) only once the usage is committed.
                        at = before + meter.final_at
                        if at:
                            client = await self._write(response, out[:at], meter)
                            out = out[at:]
                    await settle()
            if client and out:
                client = await self._write(response, out, meter)
            if not client and not drain_until:
                drain_until = time.perf_counter() + self._settings.drain_timeout
        # The upstream broke off: break off the agent's answer too, so it sees a cut
        # rather than a clean end it would trust.
        if client and held:
            with contextlib.suppress(*_CLIENT_GONE):
                await response.write(held)
        if client and request.transport is not None:
            request.transport.close()

    @staticmethod
    async def _write(response: web.StreamResponse, out: bytes, meter: Meter) -> bool:
        """Pass ``out`` on to the agent; False (and the meter told) if it has hung up."""
        try:
            await response.write(out)
        except _CLIENT_GONE:
            meter.client_left()
            return False
        return True

    def record(
        self,
        event: UsageEvent,
        signals: Sequence[QuotaSignal] = (),
        *,
        account: str | None = None,
    ) -> None:
        """Price ``event`` and hand it to the recorder (written with the next batch)."""
        self.recorder.add(self.priced(event, account), signals)

    def priced(self, event: UsageEvent, account: str | None) -> UsageEvent:
        if event.outcome is Outcome.REFUSED:
            return event if account is None else replace(event, account=account)
        cost = self._prices.cost((event.served_model, event.requested_model), event.tokens)
        named = event.account if account is None else account
        return replace(event, account=named, cost_usd=cost, priced=cost is not None)


class _Silence:
    """The upstream's silence mid-answer, watched by one timer per answer.

    aiohttp's ``sock_read`` re-arms a timer on every packet the upstream sends — a timer
    made and cancelled per chunk, most of a proxy's timer work. Once the answer's headers
    are in (aiohttp still watches the wait for those), the relay hands the watch to this:
    a check every quarter of ``limit`` fails the read in progress, as aiohttp's own would,
    when it has waited on the upstream ``limit`` seconds (so a silence is caught between
    ``limit`` and 1.25 × ``limit`` in). Time spent waiting on the agent is not silence.
    """

    __slots__ = ("_content", "_handle", "_limit", "_loop", "since")

    def __init__(self, upstream: aiohttp.ClientResponse, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._content = upstream.content
        self._limit = limit
        self.since: float | None = None  # when the read in progress began to wait
        connection = upstream.connection
        if connection is not None and connection.protocol is not None:
            connection.protocol.read_timeout = None  # its next packet drops aiohttp's timer
        self._handle = self._loop.call_later(limit / 4, self._check)

    def now(self) -> float:
        return self._loop.time()

    def _check(self) -> None:
        since = self.since
        if since is not None and self._loop.time() - since >= self._limit:
            self._content.set_exception(
                aiohttp.ServerTimeoutError(f"the upstream sent nothing for {self._limit:g} s")
            )
            return
        self._handle = self._loop.call_later(self._limit / 4, self._check)

    def stop(self) -> None:
        self._handle.cancel()
