"""The metering proxy against the fake provider on 127.0.0.1, recording into a real ledger.

The conformance table runs every scenario in every API and checks that the ledger's tokens
are exactly what the fake put on the wire. Then the edge cases: the agent hanging up, the
upstream cutting, failing or not answering, malformed and compressed streams, refused
agents, the policy's verdicts, quota headers, prices, and 50 agents at once.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.ledger import Ledger
from fleet.metering.config import MeteringSettings, Price, PriceTable
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.metering.policy import ALLOW, AllowAll, Hold, Refuse, RequestInfo, Rewrite, Verdict
from fleet.metering.proxy import MeteringProxy
from fleet.sandbox.egress.refusals import RefusalBook
from fleet.timing.clock import SystemClock
from tests.fakes.provider.bodies import key_headers
from tests.fakes.provider.server import FAKE_KEY, Api, FakeProvider, ToolCall, Turn, Usage
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder-1"
API_KEY = FAKE_KEY
PATHS: dict[Api, tuple[str, str]] = {
    "anthropic": ("anthropic", "/v1/messages?beta=true"),
    "responses": ("openai", "/v1/responses"),
    "chat": ("openai", "/v1/chat/completions"),
}
MODELS: dict[Api, str] = {
    "anthropic": "claude-sonnet-4-5",
    "responses": "gpt-5-codex",
    "chat": "gpt-4o-mini",
}
RICH = Usage(input=1200, output=345, cache_read=800, cache_write=64, reasoning=120)
AS_ANTHROPIC = RICH.seen_as_anthropic()  # Anthropic reports no reasoning count


@dataclass
class Rig:
    fake: FakeProvider
    proxy: MeteringProxy
    ledger: Ledger
    http: aiohttp.ClientSession

    def url(self, api: Api, agent: str = AGENT) -> str:
        provider, path = PATHS[api]
        return self.proxy.urls_for(agent)[provider] + path

    async def post(
        self, api: Api, body: dict[str, Any], agent: str = AGENT, **headers: str
    ) -> tuple[int, bytes, Any]:
        async with self.http.post(
            self.url(api, agent),
            json=body,
            headers={**key_headers(api, API_KEY), **headers},
        ) as response:
            data = await response.read()
            return response.status, data, response.headers

    async def events(self) -> list[UsageEvent]:
        await self.proxy.recorder.flush()
        return await self.ledger.metering.usage_events()


def body_for(api: Api, stream: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODELS[api], "stream": stream, **extra}
    if api == "responses":
        body["input"] = "hello"
    else:
        body["messages"] = [{"role": "user", "content": "hello"}]
    if api == "anthropic":
        body["max_tokens"] = 4096
    return body


def disjoint(usage: Usage | None) -> Tokens:
    if usage is None:
        return Tokens()
    return Tokens(usage.input, usage.output, usage.cache_read, usage.cache_write, usage.reasoning)


async def make_rig(
    tmp_path: Path,
    fake: FakeProvider,
    *,
    settings: MeteringSettings | None = None,
    prices: PriceTable | None = None,
    upstream: str | None = None,
) -> tuple[MeteringProxy, Ledger]:
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    base = upstream or fake.base_url
    routes = {
        "anthropic": ProviderRoute("anthropic", base, ProviderApi.ANTHROPIC),
        "openai": ProviderRoute("openai", base, ProviderApi.OPENAI),
    }
    proxy = MeteringProxy(
        tmp_path / "state",
        routes=routes,
        sink=ledger.metering.record_metering,
        settings=settings or MeteringSettings(flush_interval=0.05),
        prices=prices,
    )
    await proxy.start()
    return proxy, ledger


@pytest.fixture
async def metering_proxy_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with FakeProvider() as fake, aiohttp.ClientSession() as http:
        proxy, ledger = await make_rig(tmp_path, fake)
        try:
            yield Rig(fake, proxy, ledger, http)
        finally:
            await proxy.stop()
            await ledger.close()


# --- conformance -----------------------------------------------------------------------

SCENARIOS: dict[str, Turn] = {
    "plain": Turn(usage=RICH),
    "tool call": Turn(text="", tool=ToolCall("read_file", {"path": "a.py"}), usage=RICH),
    "text and tool": Turn(text="let me look", tool=ToolCall("ls", {}), usage=Usage(50, 9)),
    "cut early": Turn(usage=RICH, cut_after_events=1),
    "cut late": Turn(usage=RICH, cut_after_events=5),
    "fails mid-stream": Turn(usage=RICH, fail_mid_stream=True),
    "rate limited": Turn(error_status=429),
    "server error": Turn(error_status=500),
}


@pytest.mark.parametrize("api", list(PATHS))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_ledger_tokens_equal_what_the_provider_emitted(
    metering_proxy_rig: Rig, api: Api, stream: bool, scenario: str
) -> None:
    turn = SCENARIOS[scenario]
    if not stream and turn.fail_mid_stream:
        pytest.skip("only streams fail mid-way")
    metering_proxy_rig.fake.add(turn)
    try:
        status, _, _ = await metering_proxy_rig.post(api, body_for(api, stream))
    except aiohttp.ClientPayloadError:
        status = 200  # the cut reached the client as a cut, as it should
    assert status == (turn.error_status or 200)
    [event] = await metering_proxy_rig.events()
    [emitted] = metering_proxy_rig.fake.emitted if turn.error_status is None else [None]
    assert event.agent == AGENT
    assert event.api == api
    assert event.stream is stream
    assert event.requested_model == MODELS[api]
    assert event.status == status
    if emitted is None:
        assert event.outcome is Outcome.UPSTREAM_ERROR
        assert event.tokens == Tokens()
        assert str(status) in event.reason
        return
    reported = disjoint(emitted.usage)
    if stream and (emitted.cut or emitted.failed):
        # What the stream reported, raised to what passed (see test_metering_cut.py).
        assert event.tokens.output >= reported.output
        if reported.total == 0:
            assert event.tokens.input > 0 and "input estimated" in event.reason
            reported = replace(reported, input=event.tokens.input)
        assert event.tokens == replace(reported, output=event.tokens.output)
    else:
        assert event.tokens == reported
    assert event.request_id == emitted.request_id
    if emitted.cut:
        assert event.outcome in (Outcome.PARTIAL, Outcome.UNMETERED)
        assert event.partial is (event.outcome is Outcome.PARTIAL)
    elif emitted.failed:
        assert event.outcome is Outcome.UPSTREAM_ERROR
        assert "error" in event.reason
    else:
        assert event.outcome is Outcome.OK, event.reason
        assert event.served_model == MODELS[api]
        assert not event.partial


async def test_chat_usage_is_asked_for_and_the_extra_chunk_never_reaches_the_agent(
    metering_proxy_rig: Rig,
) -> None:
    metering_proxy_rig.fake.add(Turn(usage=RICH))
    status, data, _ = await metering_proxy_rig.post("chat", body_for("chat", True))
    assert status == 200
    sent = metering_proxy_rig.fake.requests[-1].body
    assert sent["stream_options"] == {"include_usage": True}
    chunks = [line[6:] for line in data.decode().splitlines() if line.startswith("data: ")]
    assert chunks[-1] == "[DONE]"
    assert all(json.loads(c).get("choices") != [] for c in chunks[:-1])
    [event] = await metering_proxy_rig.events()
    assert event.tokens == disjoint(RICH.seen_as_openai())


async def test_chat_usage_the_agent_asked_for_reaches_it(metering_proxy_rig: Rig) -> None:
    metering_proxy_rig.fake.add(Turn(usage=RICH))
    body = body_for("chat", True, stream_options={"include_usage": True})
    _, data, _ = await metering_proxy_rig.post("chat", body)
    chunks = [line[6:] for line in data.decode().splitlines() if line.startswith("data: ")]
    assert json.loads(chunks[-2])["usage"]["prompt_tokens"] == RICH.openai_input
    [event] = await metering_proxy_rig.events()
    assert event.tokens == disjoint(RICH.seen_as_openai())


async def test_headers_pass_through_but_encoding_is_identity(metering_proxy_rig: Rig) -> None:
    metering_proxy_rig.fake.add(Turn(headers={"x-provider-thing": "kept"}))
    status, _, headers = await metering_proxy_rig.post(
        "anthropic",
        body_for("anthropic", True),
        **{
            "anthropic-version": "2023-06-01",
            "accept-encoding": "gzip, br, zstd",
            "x-claude-code-session-id": "s1",
        },
    )
    assert status == 200
    seen = metering_proxy_rig.fake.requests[-1].headers
    assert seen["x-api-key"] == API_KEY
    assert seen["x-claude-code-session-id"] == "s1"
    assert seen["anthropic-version"] == "2023-06-01"
    assert seen["accept-encoding"] == "identity"
    assert metering_proxy_rig.fake.requests[-1].path == "/v1/messages"
    assert metering_proxy_rig.fake.requests[-1].query == "beta=true"
    assert headers["x-provider-thing"] == "kept"


# --- the agent and the upstream misbehaving ---------------------------------------------


async def test_agent_hanging_up_mid_stream_still_records_full_usage(
    metering_proxy_rig: Rig,
) -> None:
    metering_proxy_rig.fake.add(Turn(text="word " * 40, usage=RICH, delay_between_events=0.02))
    async with metering_proxy_rig.http.post(
        metering_proxy_rig.url("anthropic"),
        json=body_for("anthropic", True),
        headers={"x-api-key": API_KEY},
    ) as response:
        await response.content.readany()  # the first bytes, then hang up
        response.close()
    for _ in range(200):
        await asyncio.sleep(0.05)
        if metering_proxy_rig.fake.emitted:
            break
    [emitted] = metering_proxy_rig.fake.emitted
    assert not emitted.cut  # the proxy read the provider's answer to its end
    [event] = await metering_proxy_rig.events()
    assert event.tokens == disjoint(AS_ANTHROPIC)
    assert event.outcome is Outcome.OK
    assert "hung up" in event.reason


async def test_agent_hanging_up_drains_only_as_long_as_allowed(tmp_path: Path) -> None:
    slow = Turn(text="word " * 40, usage=RICH, delay_between_events=0.2)
    async with FakeProvider(slow) as fake, aiohttp.ClientSession() as http:
        settings = MeteringSettings(drain_timeout=0.3, flush_interval=0.05)
        proxy, ledger = await make_rig(tmp_path, fake, settings=settings)
        try:
            url = proxy.urls_for(AGENT)["anthropic"] + "/v1/messages"
            key = {"x-api-key": API_KEY}
            async with http.post(url, json=body_for("anthropic", True), headers=key) as response:
                await response.content.readany()
                response.close()

            async def recorded() -> list[UsageEvent]:
                await proxy.recorder.flush()
                return await ledger.metering.usage_events()

            [event] = await eventually(recorded, "the hung-up request's row")
            assert event.outcome is Outcome.PARTIAL
            assert event.partial
            assert event.tokens.input == RICH.input  # message_start was seen
            assert "drain" in event.reason
        finally:
            await proxy.stop()
            await ledger.close()


async def test_unreachable_upstream_gets_the_agent_a_provider_shaped_502(tmp_path: Path) -> None:
    async with FakeProvider() as fake:
        dead = "http://127.0.0.1:9"  # discard port: nothing listens
        proxy, ledger = await make_rig(tmp_path, fake, upstream=dead)
        try:
            async with aiohttp.ClientSession() as http:
                metering_proxy_rig = Rig(fake, proxy, ledger, http)
                status, data, _ = await metering_proxy_rig.post(
                    "anthropic", body_for("anthropic", True)
                )
                assert status == 502
                error = json.loads(data)
                assert error["type"] == "error" and error["error"]["type"] == "api_error"
                status, data, _ = await metering_proxy_rig.post(
                    "responses", body_for("responses", True)
                )
                assert status == 502 and json.loads(data)["error"]["type"] == "server_error"
                events = await metering_proxy_rig.events()
            assert [e.outcome for e in events] == [Outcome.UNREACHABLE] * 2
            assert all("unreachable" in e.reason for e in events)
        finally:
            await proxy.stop()
            await ledger.close()


async def test_silent_upstream_times_out_and_is_recorded_partial(tmp_path: Path) -> None:
    stuck = Turn(text="a b c d e f", usage=RICH, delay_between_events=2.0)
    async with FakeProvider(stuck) as fake, aiohttp.ClientSession() as http:
        settings = MeteringSettings(read_timeout=0.3, flush_interval=0.05)
        proxy, ledger = await make_rig(tmp_path, fake, settings=settings)
        try:
            metering_proxy_rig = Rig(fake, proxy, ledger, http)
            with pytest.raises(aiohttp.ClientPayloadError):
                await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
            [event] = await metering_proxy_rig.events()
            assert event.outcome is Outcome.PARTIAL
            assert "silent" in event.reason
            assert event.tokens.input == RICH.input
        finally:
            await proxy.stop()
            await ledger.close()


async def _odd_upstream(tmp_path: Path, handler: Any) -> AsyncIterator[Rig]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with FakeProvider() as fake, aiohttp.ClientSession() as http:
        proxy, ledger = await make_rig(tmp_path, fake, upstream=upstream)
        try:
            yield Rig(fake, proxy, ledger, http)
        finally:
            await proxy.stop()
            await ledger.close()
            await runner.cleanup()


MALFORMED = (
    b"event: message_start\ndata: {this is not json\n\n"
    b"event: message_delta\ndata: [1, 2]\n\n"
    b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
)


async def test_malformed_stream_passes_through_untouched_and_is_unmetered(
    tmp_path: Path,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(MALFORMED)
        await response.write_eof()
        return response

    async for metering_proxy_rig in _odd_upstream(tmp_path, handler):
        status, data, _ = await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
        assert status == 200
        assert data == MALFORMED
        [event] = await metering_proxy_rig.events()
        assert event.outcome is Outcome.UNMETERED
        assert "not JSON" in event.reason


async def test_a_compressed_answer_is_read_anyway(tmp_path: Path) -> None:
    plain = anthropic_stream("zipped")

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(plain),
            headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"},
        )

    async for metering_proxy_rig in _odd_upstream(tmp_path, handler):
        status, data, _ = await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
        assert status == 200 and data == plain  # the client decoded it itself
        [event] = await metering_proxy_rig.events()
        assert event.outcome is Outcome.OK
        assert event.tokens == disjoint(AS_ANTHROPIC)


def anthropic_stream(text: str) -> bytes:
    from tests.fakes.provider import sse
    from tests.fakes.provider.sse import Reply

    reply = Reply("claude-sonnet-4-5", text, None, RICH, 1, 0)
    return b"".join(event.encode() for event in sse.anthropic_events(reply))


async def test_the_stream_reaches_the_agent_byte_for_byte_in_any_chunking(
    tmp_path: Path,
) -> None:
    plain = anthropic_stream("split " * 50)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, len(plain), 37):  # chunks that cut events and lines anywhere
            await response.write(plain[start : start + 37])
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    async for metering_proxy_rig in _odd_upstream(tmp_path, handler):
        status, data, _ = await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
        assert status == 200
        assert data == plain
        [event] = await metering_proxy_rig.events()
        assert event.outcome is Outcome.OK
        assert event.tokens == disjoint(AS_ANTHROPIC)


# --- who may use the proxy ------------------------------------------------------------


async def test_wrong_key_unknown_agent_and_unknown_provider_are_refused(
    metering_proxy_rig: Rig,
) -> None:
    good = metering_proxy_rig.proxy.urls_for(AGENT)["anthropic"]
    port = metering_proxy_rig.proxy.port
    wrong_key = good.rsplit("/", 1)[0] + "/not-the-key"
    other = metering_proxy_rig.proxy.urls_for("other")["anthropic"].replace(
        "/a/other/", f"/a/{AGENT}/"
    )
    unknown_agent = good.replace(f"/a/{AGENT}/", "/a/nobody/")
    unknown_provider = good.replace("/anthropic/", "/mistery/")
    for base in (wrong_key, other, unknown_agent, unknown_provider):
        async with metering_proxy_rig.http.post(
            base + "/v1/messages", json=body_for("anthropic", True)
        ) as r:
            assert r.status == 403
            error = await r.json()
            assert error["error"]["type"] == "permission_error"
    async with metering_proxy_rig.http.post(f"http://127.0.0.1:{port}/v1/messages", json={}) as r:
        assert r.status == 404
    assert metering_proxy_rig.fake.requests == []  # nothing was forwarded
    assert await metering_proxy_rig.events() == []  # no model request was ever made
    assert metering_proxy_rig.proxy.strangers.count == 4


async def test_unauthenticated_requests_write_nothing_an_attacker_chose(
    metering_proxy_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A request with a wrong key writes nothing to the ledger and puts none of its text in
    the log: it is answered and counted, with at most one log line a minute."""
    good = metering_proxy_rig.proxy.urls_for(AGENT)["anthropic"]
    marker = "INJECTED-TEXT"
    bases = [
        good.rsplit("/", 1)[0] + f"/{marker}",
        good.replace(f"/a/{AGENT}/", f"/a/{marker}/"),
        good.replace(f"/a/{AGENT}/", f"/a/{marker}%0aFAKE%20LINE/"),
        good.replace("/anthropic/", f"/{marker}/").rsplit("/", 1)[0] + "/bad",
    ]
    for base in bases * 5:
        url = URL(base + "/v1/messages", encoded=True)
        async with metering_proxy_rig.http.post(url, json=body_for("anthropic", True)) as r:
            assert r.status == 403
    assert await metering_proxy_rig.events() == []
    assert marker not in caplog.text
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) <= 1
    assert metering_proxy_rig.proxy.strangers.count == 20


ATTACKS = [
    ("POST", "v1/messages/batches"),
    ("POST", "v1/complete"),
    ("POST", "V1/messages"),
    ("POST", "v1/messages%20"),
    ("POST", "v1/messages;x=1"),
    ("POST", "v1/messages/count_tokens/../../messages/batches"),
    ("POST", "v1/..%2f..%2fadmin/v1/messages"),
    ("POST", "v1/%2e%2e/%2e%2e/other/v1/messages"),
    ("GET", "v1/files"),
]


@pytest.mark.parametrize(("method", "tail"), ATTACKS)
async def test_unknown_endpoints_are_refused_and_never_forwarded(
    metering_proxy_rig: Rig, method: str, tail: str
) -> None:
    """A model endpoint the proxy does not know, or a path that could escape the upstream's
    prefix, is refused in the provider's shape naming the path, and never reaches it; the
    refusal is told as the agent's (its egress refusals count it)."""
    told: list[tuple[str, str]] = []
    metering_proxy_rig.proxy.on_refused = lambda agent, why: told.append((agent, why))
    url = URL(metering_proxy_rig.proxy.urls_for(AGENT)["anthropic"] + "/" + tail, encoded=True)
    async with metering_proxy_rig.http.request(
        method, url, json=body_for("anthropic", True), headers={"x-api-key": API_KEY}
    ) as r:
        assert r.status in (403, 404)
        error = await r.json()
    assert error["type"] == "error"
    message = error["error"]["message"]
    assert "providers.anthropic.passthrough" in message or "path" in message
    assert metering_proxy_rig.fake.requests == []
    assert await metering_proxy_rig.events() == []  # logged, but no model request to record
    assert [agent for agent, _ in told] == [AGENT]


async def test_a_refused_endpoint_is_counted_in_the_book_the_proxy_is_made_with(
    tmp_path: Path,
) -> None:
    """A proxy made with the book of refused egress (as the spend phase makes it) counts an
    endpoint it refused in the ledger as the agent's refusal by the metering proxy."""
    async with FakeProvider() as fake, aiohttp.ClientSession() as http:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        book = RefusalBook(ledger.refusals, None, SystemClock())
        route = ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)
        proxy = MeteringProxy(
            tmp_path / "state",
            routes={"anthropic": route},
            sink=ledger.metering.record_metering,
            on_refused=book.proxy_refused,
        )
        await proxy.start()
        try:
            async with http.get(proxy.urls_for(AGENT)["anthropic"] + "/v1/files") as r:
                assert r.status == 404
            [count] = await book.counts(AGENT)
            assert (count.source, count.target, count.count) == ("proxy", "metering proxy", 1)
            assert "passthrough" in count.why and fake.requests == []
        finally:
            await proxy.stop()
            await ledger.close()


async def test_forwarded_paths_are_the_normalised_ones(metering_proxy_rig: Rig) -> None:
    """Duplicate and trailing slashes are dropped and escapes decoded before forwarding: the
    upstream gets the path the proxy metered, under its own prefix."""
    for tail in ("v1//messages/", "v1/%6Dessages"):
        url = URL(metering_proxy_rig.url("anthropic").split("/v1/")[0] + "/" + tail, encoded=True)
        key = {"x-api-key": API_KEY}
        async with metering_proxy_rig.http.post(
            url, json=body_for("anthropic", False), headers=key
        ) as r:
            assert r.status == 200
    assert [r.path for r in metering_proxy_rig.fake.requests] == ["/v1/messages"] * 2
    assert len(await metering_proxy_rig.events()) == 2


async def test_passthrough_paths_are_forwarded_unmetered(tmp_path: Path) -> None:
    """A provider's ``passthrough`` paths go through unmetered; their neighbours do not."""
    async with FakeProvider() as fake, aiohttp.ClientSession() as http:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        route = ProviderRoute(
            "anthropic", fake.base_url, ProviderApi.ANTHROPIC, passthrough=("/v1/files/*",)
        )
        proxy = MeteringProxy(
            tmp_path / "state", routes={"anthropic": route}, sink=ledger.metering.record_metering
        )
        await proxy.start()
        try:
            base = proxy.urls_for(AGENT)["anthropic"]
            async with http.get(base + "/v1/files/f1") as r:
                assert r.status == 404  # the fake's answer: it was forwarded
            async with http.get(base + "/v1/files") as r:
                assert r.status == 404
                assert "passthrough" in (await r.json())["error"]["message"]
            assert [r.path for r in fake.requests] == ["/v1/files/f1"]
            await proxy.recorder.flush()
            assert await ledger.metering.usage_events() == []
        finally:
            await proxy.stop()
            await ledger.close()


async def test_preflight_and_other_paths_pass_through_unmetered(metering_proxy_rig: Rig) -> None:
    base = metering_proxy_rig.proxy.urls_for(AGENT)["anthropic"]
    async with metering_proxy_rig.http.head(base + "/") as response:
        assert response.status == 404  # what the provider said
    key = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    async with metering_proxy_rig.http.get(base + "/v1/models", headers=key) as response:
        assert response.status == 200
        assert (await response.json())["data"]
    count = {"model": MODELS["anthropic"], "messages": [{"role": "user", "content": "hello"}]}
    async with metering_proxy_rig.http.post(
        base + "/v1/messages/count_tokens", json=count, headers=key
    ) as response:
        assert response.status == 200
    assert [r.method for r in metering_proxy_rig.fake.requests] == ["HEAD", "GET", "POST"]
    assert await metering_proxy_rig.events() == []


async def test_keys_survive_a_restart_of_the_proxy(tmp_path: Path) -> None:
    async with FakeProvider() as fake:
        proxy, ledger = await make_rig(tmp_path, fake)
        before = proxy.urls_for(AGENT)
        await proxy.stop()
        again = MeteringProxy(
            tmp_path / "state",
            routes={"anthropic": ProviderRoute("anthropic", fake.base_url)},
            sink=ledger.metering.record_metering,
        )
        await again.start()
        try:
            assert again.urls_for(AGENT)["anthropic"] == before["anthropic"]
            mode = (tmp_path / "state" / "metering.json").stat().st_mode & 0o777
            assert mode == 0o600
        finally:
            await again.stop()
            await ledger.close()


# --- the policy hook ------------------------------------------------------------------


class Scripted(AllowAll):
    """A policy answering with the verdicts it is given, in order, then allowing (and
    reserving nothing)."""

    def __init__(self, *verdicts: Verdict) -> None:
        self.verdicts = list(verdicts)
        self.asked: list[RequestInfo] = []

    def decide(self, request: RequestInfo) -> Verdict:
        self.asked.append(request)
        return self.verdicts.pop(0) if self.verdicts else ALLOW


async def test_rewrite_sends_the_other_model_and_records_both(metering_proxy_rig: Rig) -> None:
    metering_proxy_rig.proxy.policy = Scripted(Rewrite("claude-haiku-4-5", "over pace"))
    await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
    assert metering_proxy_rig.fake.requests[-1].model == "claude-haiku-4-5"
    [event] = await metering_proxy_rig.events()
    assert event.requested_model == "claude-haiku-4-5"
    assert event.rewritten_from == "claude-sonnet-4-5"
    assert event.served_model == "claude-haiku-4-5"
    assert event.outcome is Outcome.OK


async def test_hold_waits_then_asks_again(metering_proxy_rig: Rig) -> None:
    now = SystemClock().now()
    policy = Scripted(Hold(now + timedelta(seconds=0.3), "queued"))
    metering_proxy_rig.proxy.policy = policy
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, _, _ = await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
    assert status == 200
    assert loop.time() - started >= 0.25
    assert len(policy.asked) == 2
    assert policy.asked[0].agent == AGENT and policy.asked[0].model == "claude-sonnet-4-5"


async def test_hold_beyond_the_longest_wait_is_refused(tmp_path: Path) -> None:
    async with FakeProvider() as fake, aiohttp.ClientSession() as http:
        settings = MeteringSettings(max_hold=1.0, flush_interval=0.05)
        proxy, ledger = await make_rig(tmp_path, fake, settings=settings)
        try:
            until = SystemClock().now() + timedelta(minutes=10)
            proxy.policy = Scripted(Hold(until, "queued behind the pace"))
            metering_proxy_rig = Rig(fake, proxy, ledger, http)
            status, data, headers = await metering_proxy_rig.post(
                "anthropic", body_for("anthropic", True)
            )
            assert status == 429
            assert 590 <= int(headers["retry-after"]) <= 600
            assert json.loads(data)["error"]["type"] == "rate_limit_error"
            assert fake.requests == []
        finally:
            await proxy.stop()
            await ledger.close()


@pytest.mark.parametrize("api", ["anthropic", "responses"])
async def test_refuse_answers_429_in_the_providers_shape(metering_proxy_rig: Rig, api: Api) -> None:
    metering_proxy_rig.proxy.policy = Scripted(Refuse(90.0, "the daily budget is spent"))
    status, data, headers = await metering_proxy_rig.post(api, body_for(api, True))
    assert status == 429
    assert headers["retry-after"] == "90"
    error = json.loads(data)
    if api == "anthropic":
        assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
        assert "daily budget" in error["error"]["message"]
    else:
        assert error["error"]["code"] == "rate_limit_exceeded"
        assert "daily budget" in error["error"]["message"]
    assert metering_proxy_rig.fake.requests == []
    [event] = await metering_proxy_rig.events()
    assert event.outcome is Outcome.REFUSED and event.status == 429


# --- quota signals and prices ---------------------------------------------------------

UNIFIED = {
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-5h-utilization": "0.42",
    "anthropic-ratelimit-unified-5h-reset": "1795370000",
    "anthropic-ratelimit-unified-7d-utilization": "0.13",
    "anthropic-ratelimit-requests-remaining": "49",
}
CODEX = {
    "x-codex-primary-used-percent": "37.5",
    "x-codex-primary-window-minutes": "300",
    "x-codex-secondary-reset-at": "1795999999",
    "x-ratelimit-remaining-tokens": "150000",
}


async def test_rate_limit_headers_become_quota_signals_once_per_change(
    metering_proxy_rig: Rig,
) -> None:
    metering_proxy_rig.fake.add(Turn(headers=UNIFIED), Turn(headers=UNIFIED), Turn(headers=CODEX))
    await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
    await metering_proxy_rig.post(
        "anthropic", body_for("anthropic", True)
    )  # unchanged: not written again
    await metering_proxy_rig.post("responses", body_for("responses", True))
    await metering_proxy_rig.events()
    signals = await metering_proxy_rig.ledger.metering.quota_signals()
    by_name = {s.name: s for s in signals}
    assert len(signals) == len(UNIFIED) + len(CODEX)
    five = by_name["anthropic-ratelimit-unified-5h-utilization"]
    assert (five.family, five.window, five.metric, five.value) == (
        "anthropic-ratelimit-unified",
        "5h",
        "utilization",
        "0.42",
    )
    assert by_name["anthropic-ratelimit-requests-remaining"].family == "anthropic-ratelimit"
    codex = by_name["x-codex-primary-used-percent"]
    assert (codex.family, codex.window, codex.metric) == ("x-codex", "primary", "used-percent")
    assert by_name["x-ratelimit-remaining-tokens"].provider == "openai"
    assert {s.agent for s in signals} == {AGENT}


async def test_priced_models_get_a_cost_and_others_stay_tokens_only(tmp_path: Path) -> None:
    prices = PriceTable({"claude-sonnet-4-5": Price(3.0, 15.0, 0.3, 3.75)})
    async with FakeProvider(Turn(usage=RICH), Turn(usage=RICH)) as fake:
        proxy, ledger = await make_rig(tmp_path, fake, prices=prices)
        try:
            async with aiohttp.ClientSession() as http:
                metering_proxy_rig = Rig(fake, proxy, ledger, http)
                await metering_proxy_rig.post("anthropic", body_for("anthropic", True))
                await metering_proxy_rig.post("chat", body_for("chat", True))
                priced, unpriced = await metering_proxy_rig.events()
            expected = (1200 * 3.0 + 345 * 15.0 + 800 * 0.3 + 64 * 3.75) / 1_000_000
            assert priced.cost_usd == pytest.approx(expected)
            assert priced.priced
            assert unpriced.cost_usd is None and not unpriced.priced
            assert unpriced.tokens.total > 0
        finally:
            await proxy.stop()
            await ledger.close()


# --- many agents at once --------------------------------------------------------------


async def test_fifty_agents_streaming_at_once_are_each_billed_their_own(
    metering_proxy_rig: Rig,
) -> None:
    agents = [f"agent-{i:02d}" for i in range(50)]
    metering_proxy_rig.fake.default = Turn(
        text="word " * 30, usage=RICH, delay_between_events=0.002
    )

    async def work(agent: str) -> None:
        for _ in range(3):
            status, _, _ = await metering_proxy_rig.post(
                "anthropic", body_for("anthropic", True), agent=agent, **{"x-test-agent": agent}
            )
            assert status == 200

    await asyncio.gather(*(work(agent) for agent in agents))
    events = await metering_proxy_rig.events()
    assert len(events) == 150
    # The fake numbers its answers; which agent sent each request is in its headers.
    sender = {
        f"req_fake{index:016d}": request.headers["x-test-agent"]
        for index, request in enumerate(metering_proxy_rig.fake.requests, start=1)
    }
    assert {e.request_id: e.agent for e in events} == sender
    assert all(e.tokens == disjoint(AS_ANTHROPIC) and e.outcome is Outcome.OK for e in events)
    totals = await metering_proxy_rig.ledger.metering.tokens_by_agent(
        SystemClock().now() - timedelta(hours=1)
    )
    assert totals == {agent: 3 * disjoint(AS_ANTHROPIC).total for agent in agents}
