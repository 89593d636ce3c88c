"""Passing an upstream's answer on to the agent while metering it.

Chunks are passed on as they arrive and a copy is parsed on the side
(:class:`~fleet.metering.meter.Meter`). The answer's usage is committed to the ledger
before the agent gets the answer's last bytes, so killing Fleetwarden at any moment loses
no usage of an answer an agent received. The agent hanging up mid-stream does not stop
the metering: the upstream is read on (up to ``drain_timeout``) until its usage arrives.
An upstream that cuts the stream is recorded with what was seen, flagged partial, and the
agent's answer is cut too. Either way the row counts at least the deltas that passed
(:mod:`fleet.metering.meter`).
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
from fleet.metering.events import Outcome, QuotaSignal, UsageEvent
from fleet.metering.meter import Meter
from fleet.metering.recorder import Recorder
from fleet.metering.signals import SignalTracker
from fleet.metering.upstream import HOP_BY_HOP

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
        bytes: the chunk that ends a stream, or — for a whole JSON answer, whose end only
        EOF tells — the last chunk, held back one read."""
        client = True
        drain_until = 0.0
        content = upstream.content
        held = b""  # a whole answer's latest chunk, passed on when the next one comes
        while True:
            try:
                if client:
                    chunk = await content.readany()
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
                out, held = held + out, b""
                if meter.reader.complete:
                    await settle()
            if client and out:
                try:
                    await response.write(out)
                except _CLIENT_GONE:
                    client = False
                    meter.client_left()
                    drain_until = time.perf_counter() + self._settings.drain_timeout
        # The upstream broke off: break off the agent's answer too, so it sees a cut
        # rather than a clean end it would trust.
        if client and held:
            with contextlib.suppress(*_CLIENT_GONE):
                await response.write(held)
        if client and request.transport is not None:
            request.transport.close()

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
        if account is not None:
            event = replace(event, account=account)
        models = (event.served_model, event.requested_model)
        if event.outcome is not Outcome.REFUSED:
            cost = self._prices.cost(models, event.tokens)
            event = replace(event, cost_usd=cost, priced=cost is not None)
        return event
