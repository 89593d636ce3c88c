"""Run caps at the real metering proxy, against an upstream that answers as OpenAI and
OpenAI-compatible servers do where a body's fields are read leniently or the usage never
comes back: a Responses request in background mode (answered ``queued``, ``usage: null``,
generated and billed afterwards), ``max_completion_tokens`` honoured over ``max_tokens``,
``n: 8.0`` read as 8, and answers without usage. Whatever the body, the upstream bills at
most the cap and one request more."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.budgets.runs.caps import CappedPolicy, RunCaps
from fleet.metering.config import MeteringSettings
from fleet.metering.counting.events import Outcome, QuotaSignal, UsageEvent
from fleet.metering.policy import AllowAll
from fleet.metering.proxy import MeteringProxy
from fleet.metering.wire.bounds import INPUT_OVERHEAD
from fleet.model import RunBudget
from tests.fakes.loopback import LoopbackServer

pytestmark = pytest.mark.integration

CAPPED, FREE = "coder-1", "free-1"
PROMPT = 20  # input tokens the upstream bills a request


class Upstream(LoopbackServer):
    """OpenAI's Responses API and an OpenAI-compatible server's Chat Completions."""

    def __init__(self) -> None:
        super().__init__()
        self.usage = True  # whether answers carry their usage
        self.billed = 0  # tokens billed, out of band included
        self.bodies: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        if body.get("background") is not True:
            raise web.HTTPNotImplemented
        # Background mode as OpenAI answers it: at once, queued, nothing generated yet and
        # no usage; the response is generated (up to max_output_tokens) and billed later.
        self.billed += body["max_output_tokens"] + PROMPT
        return web.json_response(
            {
                "id": f"resp_{len(self.bodies):04d}",
                "object": "response",
                "created_at": int(time.time()),
                "status": "queued",
                "background": True,
                "error": None,
                "incomplete_details": None,
                "instructions": None,
                "max_output_tokens": body["max_output_tokens"],
                "model": body["model"],
                "output": [],
                "parallel_tool_calls": True,
                "previous_response_id": None,
                "reasoning": {"effort": "medium", "summary": None},
                "store": body.get("store", True),
                "temperature": 1.0,
                "text": {"format": {"type": "text"}},
                "tool_choice": "auto",
                "tools": [],
                "top_p": 1.0,
                "truncation": "disabled",
                "usage": None,
                "user": None,
                "metadata": {},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        # As vLLM reads a body: max_completion_tokens wins over max_tokens, n is a lax int.
        limit = int(body.get("max_completion_tokens") or body["max_tokens"])
        choices = int(body.get("n") or 1)
        await asyncio.sleep(0.2)
        out = limit * choices
        self.billed += out + PROMPT
        usage = {"prompt_tokens": PROMPT, "completion_tokens": out, "total_tokens": out + PROMPT}
        if body.get("stream") is True:
            return await self._stream(request, body, usage)
        answer: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "x"},
                    "finish_reason": "length",
                }
                for i in range(choices)
            ],
        }
        if self.usage:
            answer["usage"] = usage
        return web.json_response(answer)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], usage: dict[str, int]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": body["model"]}
        delta = {"index": 0, "delta": {"content": "x"}, "finish_reason": None}
        chunks: list[dict[str, Any]] = [
            {**base, "choices": [delta]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
        ]
        if self.usage:
            chunks.append({**base, "choices": [], "usage": usage})
        for chunk in chunks:
            data = json.dumps(chunk, separators=(",", ":"))
            await response.write(f"data: {data}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


@dataclass
class Rig:
    upstream: Upstream
    proxy: MeteringProxy
    events: list[UsageEvent]
    http: aiohttp.ClientSession

    async def post(self, path: str, payload: dict[str, Any], agent: str = CAPPED) -> int:
        url = self.proxy.urls_for(agent)["openai"] + path
        headers = {"Authorization": "Bearer sk-test"}
        async with self.http.post(url, json=payload, headers=headers) as answer:
            await answer.read()
            return answer.status

    async def flood(self, payload: dict[str, Any], count: int) -> list[int]:
        path = "/v1/chat/completions"
        return list(await asyncio.gather(*(self.post(path, payload) for _ in range(count))))


@pytest.fixture
async def run_caps_proxy_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    caps = RunCaps()
    caps.arm(CAPPED, 1, RunBudget(max_tokens=20_000), datetime.now(UTC))
    events: list[UsageEvent] = []

    async def sink(usage: list[UsageEvent], signals: list[QuotaSignal]) -> None:
        events.extend(usage)

    async with Upstream() as upstream:
        route = ProviderRoute("openai", upstream.base_url, ProviderApi.OPENAI)
        proxy = MeteringProxy(
            tmp_path / "state",
            routes={"openai": route},
            sink=sink,
            settings=MeteringSettings(flush_interval=0.05),
            policy=CappedPolicy(AllowAll(), caps),
        )
        await proxy.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield Rig(upstream, proxy, events, http)
        finally:
            await proxy.stop()


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


async def test_a_background_request_is_refused_under_a_cap_and_never_sent(
    run_caps_proxy_rig: Rig,
) -> None:
    """20 background requests of 100,000 output tokens under a 20,000-token cap: each is
    refused with 400 naming ``background``, and the upstream bills nothing; an uncapped
    agent's goes, answered queued and recorded without usage."""
    payload = {
        "model": "gpt-5",
        "input": "write a novel",
        "background": True,
        "store": True,
        "max_output_tokens": 100_000,
    }
    statuses = [await run_caps_proxy_rig.post("/v1/responses", payload) for _ in range(20)]
    assert statuses == [400] * 20
    assert run_caps_proxy_rig.upstream.billed == 0 and run_caps_proxy_rig.upstream.bodies == []
    assert await run_caps_proxy_rig.post("/v1/responses", payload, agent=FREE) == 200
    await run_caps_proxy_rig.proxy.stop()
    refused = [e for e in run_caps_proxy_rig.events if e.agent == CAPPED]
    assert {e.outcome for e in refused} == {Outcome.REFUSED}
    assert "`background`" in refused[0].reason
    [free] = [e for e in run_caps_proxy_rig.events if e.agent == FREE]
    assert free.outcome is Outcome.UNMETERED


@pytest.mark.parametrize("stream", [False, True])
async def test_answers_without_usage_fill_the_cap_at_their_worst_case(
    run_caps_proxy_rig: Rig, stream: bool
) -> None:
    """A server that leaves usage out of its answers (streamed or not): each settles at
    its request's worst case, so the cap fills after four 5,000-token requests, not never."""
    run_caps_proxy_rig.upstream.usage = False
    payload = chat(max_tokens=5_000, stream=stream)
    statuses = [await run_caps_proxy_rig.post("/v1/chat/completions", payload) for _ in range(10)]
    worst = len(json.dumps(payload).encode()) + INPUT_OVERHEAD + 5_000  # about 6,100
    admitted = -(-20_000 // worst)
    assert statuses == [200] * admitted + [400] * (10 - admitted)
    assert run_caps_proxy_rig.upstream.billed <= 20_000 + 5_000 + PROMPT


@pytest.mark.parametrize(
    ("fields", "one"),
    [
        ({"max_tokens": 16, "max_completion_tokens": 5_000}, 5_000),
        ({"max_tokens": 2_000, "n": 8.0}, 16_000),
        ({"max_tokens": 5_000}, 5_000),
    ],
)
async def test_thirty_at_once_are_billed_the_cap_and_one_request_more(
    run_caps_proxy_rig: Rig, fields: dict[str, Any], one: int
) -> None:
    """30 requests at once under a 20,000-token cap, whichever output fields they use:
    what the upstream bills (``one`` output tokens a request, as it reads them) passes
    the cap by at most one request."""
    statuses = await run_caps_proxy_rig.flood(chat(**fields), 30)
    assert statuses.count(200) >= 1
    assert run_caps_proxy_rig.upstream.billed <= 20_000 + one + PROMPT, (
        statuses,
        run_caps_proxy_rig.upstream.billed,
    )
