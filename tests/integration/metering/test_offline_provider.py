"""The offline provider behind the real metering proxy, recording into a real ledger: every
API streamed and not, reserved and settled through the policy as a real provider's
requests are; never in the way of a provider the config configures; and the real Claude
Code CLI finishing a turn against it with no key."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Config, parse_config
from fleet.ledger import Ledger
from fleet.metering.config import MeteringSettings
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.metering.counting.usage import Api
from fleet.metering.offline.model import DEMO_MODEL, DEMO_PRICE, answer
from fleet.metering.policy import ALLOW, Estimate, RequestInfo, Reservation, Verdict
from fleet.metering.proxy import MeteringProxy
from fleet.runtimes.base import OFFLINE_PROVIDERS_ENV
from fleet.runtimes.stub import STUB_AGENT
from fleet.timing.clock import SystemClock
from tests.fakes.provider.bodies import key_headers
from tests.fakes.provider.server import FakeProvider, Turn
from tests.integration.runtimes.test_real_clis import clean_env, cli, run_cli

pytestmark = pytest.mark.integration

AGENT = "demo"
PATHS: dict[Api, tuple[str, str]] = {
    "anthropic": ("anthropic", "/v1/messages"),
    "responses": ("openai", "/v1/responses"),
    "chat": ("openai", "/v1/chat/completions"),
}


@dataclass
class Ledgered:
    """A policy that reserves every request's estimate and keeps what was settled."""

    reserved: list[tuple[RequestInfo, Estimate]] = field(default_factory=list)
    settled: list[tuple[int, float | None]] = field(default_factory=list)

    def decide(self, request: RequestInfo) -> Verdict:
        return ALLOW

    def reserve(self, request: RequestInfo, estimate: Estimate) -> Reservation:
        self.reserved.append((request, estimate))
        return Reservation(len(self.reserved), "global", "usd", estimate.usd or 0.0)

    def settle(
        self, reservation: Reservation, tokens: int, cost: float | None, *, unmetered: bool = False
    ) -> None:
        self.settled.append((tokens, cost))


@dataclass
class Rig:
    proxy: MeteringProxy
    ledger: Ledger
    policy: Ledgered
    http: aiohttp.ClientSession

    async def post(self, api: Api, body: dict[str, Any]) -> tuple[int, bytes]:
        provider, path = PATHS[api]
        async with self.http.post(
            self.proxy.urls_for(AGENT)[provider] + path, json=body, headers=key_headers(api)
        ) as response:
            return response.status, await response.read()

    async def events(self) -> list[UsageEvent]:
        await self.proxy.recorder.flush()
        return await self.ledger.metering.usage_events()


def vars_of(usage: Any) -> dict[str, int]:
    return {
        "input": usage.input,
        "output": usage.output,
        "cache_read": usage.cache_read,
        "cache_write": usage.cache_write,
    }


def config_of(text: str) -> Config:
    return parse_config(text, "fleetwarden.yaml", base_dir=Path("/srv/fw"))


@pytest.fixture
async def rigs(tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Rig] = []

    async def make(config: Config) -> Rig:
        ledger = await Ledger.open(tmp_path / f"ledger{len(made)}.db", SystemClock())
        policy = Ledgered()
        proxy = MeteringProxy(
            tmp_path / f"state{len(made)}",
            routes=config.providers,
            sink=ledger.metering.record_metering,
            settings=MeteringSettings(flush_interval=0.05),
            prices=config.prices,
            policy=policy,
        )
        await proxy.start()
        rig = Rig(proxy, ledger, policy, aiohttp.ClientSession())
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await rig.http.close()
        await rig.proxy.stop()
        await rig.ledger.close()


def body_for(api: Api, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-haiku-4-5", "stream": stream, "max_tokens": 256}
    if api == "responses":
        body["input"] = "count to 3"
    else:
        body["messages"] = [{"role": "user", "content": "count to 3"}]
    return body


def unclocked(body: bytes) -> bytes:
    """``body`` with the answer's creation time (whole seconds of the clock) blanked."""
    return re.sub(rb'"created(_at)?":\d+', rb'"created\1":0', body)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("api", ["anthropic", "responses", "chat"])
async def test_every_api_is_metered_reserved_and_settled_with_no_config(
    rigs: Any, api: Api, stream: bool
) -> None:
    """With no config and no key, each API's request is answered by the offline provider
    through the proxy: reserved at the demo model's price, recorded with its real usage and
    cost, and settled at that usage; the same request gets the same bytes again."""
    rig = await rigs(Config.default(Path("/srv/fw")))
    body = body_for(api, stream)
    status, first = await rig.post(api, body)
    assert status == 200, first
    assert b"offline" in first and DEMO_MODEL.encode() in first
    again = await rig.post(api, body)
    assert again[0] == status
    assert unclocked(again[1]) == unclocked(first)  # deterministic, ids and all
    expected = answer(body)
    tokens = Tokens(input=expected.input_tokens, output=expected.output_tokens)
    cost = DEMO_PRICE.cost(tokens)
    events = await rig.events()
    assert len(events) == 2
    for event in events:
        assert event.outcome is Outcome.OK, event
        assert (event.provider, event.api, event.stream) == (PATHS[api][0], api, stream)
        assert (event.requested_model, event.served_model) == ("claude-haiku-4-5", DEMO_MODEL)
        assert event.tokens == tokens
        assert event.priced and event.cost_usd == pytest.approx(cost)
    request, estimate = rig.policy.reserved[0]
    assert request.model == DEMO_MODEL and estimate.usd is not None and estimate.usd > 0
    assert rig.policy.settled == [(tokens.total, pytest.approx(cost))] * 2


async def test_a_configured_provider_is_never_answered_offline(rigs: Any) -> None:
    """A provider the config points somewhere gets every request there, even one naming the
    demo model; the provider left unconfigured is still answered offline."""
    async with FakeProvider(default=Turn(text="from the real one"), any_model=True) as fake:
        config = config_of(f"providers:\n  anthropic:\n    upstream: {fake.base_url}\n")
        rig = await rigs(config)
        body = {**body_for("anthropic", True), "model": DEMO_MODEL}
        status, data = await rig.post("anthropic", body)
        assert status == 200 and b"real" in data
        assert b"offline" not in data
        assert [r.path for r in fake.requests if r.method == "POST"] == ["/v1/messages"]
        status, data = await rig.post("chat", body_for("chat", False))
        assert status == 200 and b"no real model ran" in data
        assert len(fake.requests) == 1
        charged = [(e.provider, e.tokens) for e in await rig.events()]
        assert charged[0] == ("anthropic", Tokens(**vars_of(fake.default.usage)))
        assert charged[1][0] == "openai"


@pytest.mark.agent_cli
async def test_claude_code_finishes_a_turn_against_it_with_no_key(
    rigs: Any, tmp_path: Path
) -> None:
    """The real Claude Code CLI, pointed at the proxy with no key of any provider, gets the
    offline answer and its usage; the ledger has its requests priced."""
    rig = await rigs(Config.default(Path("/srv/fw")))
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "tmp").mkdir(parents=True)
    work.mkdir()
    env = clean_env(
        home,
        {
            "ANTHROPIC_BASE_URL": rig.proxy.urls_for(AGENT)["anthropic"],
            "ANTHROPIC_API_KEY": "no-key",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        },
    )
    run = await run_cli([cli("claude"), "-p", "count to 3", "--output-format", "json"], work, env)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "no real model ran" in run.stdout, run.stdout
    events = [e for e in await rig.events() if e.api == "anthropic"]
    assert events and all(e.outcome is Outcome.OK and e.served_model == DEMO_MODEL for e in events)
    assert all(e.tokens.total > 0 and e.priced and (e.cost_usd or 0) > 0 for e in events)


@pytest.mark.agent_cli
async def test_codex_finishes_a_turn_against_it_with_no_key(rigs: Any, tmp_path: Path) -> None:
    """The real Codex CLI, its provider's base URL the proxy's `openai` route and no key,
    streams the Responses API from the offline provider to the end of its turn."""
    rig = await rigs(Config.default(Path("/srv/fw")))
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    (home / "tmp").mkdir()
    work.mkdir()
    base = rig.proxy.urls_for(AGENT)["openai"]
    (home / ".codex" / "config.toml").write_text(
        f"""\
model = "gpt-5-codex"
model_provider = "fleetwarden"
check_for_update_on_startup = false

[model_providers.fleetwarden]
name = "Fleetwarden"
base_url = "{base}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
supports_websockets = false
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false

[otel]
exporter = "none"
metrics_exporter = "none"
"""
    )
    env = clean_env(home, {"CODEX_HOME": str(home / ".codex"), "OPENAI_API_KEY": "no-key"})
    argv = [cli("codex"), "exec", "--skip-git-repo-check", "--ephemeral", "count to 3"]
    run = await run_cli(argv, work, env)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "no real model ran" in run.stdout, run.stdout + run.stderr[-2000:]
    events = [e for e in await rig.events() if e.api == "responses"]
    assert events and all(e.outcome is Outcome.OK and e.served_model == DEMO_MODEL for e in events)
    assert all(e.tokens.total > 0 and (e.cost_usd or 0) > 0 for e in events)


def stub(prompt: str, env: dict[str, str]) -> str:
    """The stub agent's output for ``prompt``, told to exit once it waits for input."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(STUB_AGENT), "--step-delay", "0", f"--prompt={prompt}"],
        input="exit\n",
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), **env},
        timeout=60,
        check=True,
    )
    return done.stdout


async def test_the_stub_asks_about_its_prompt_only_of_the_stand_in(rigs: Any) -> None:
    """Told the offline provider stands in for Anthropic, the stub asks it once about its
    prompt, and the run is charged; pointed at a real provider, it asks nothing."""
    rig = await rigs(Config.default(Path("/srv/fw")))
    base = rig.proxy.urls_for(AGENT)["anthropic"]
    offline = {"ANTHROPIC_BASE_URL": base, OFFLINE_PROVIDERS_ENV: "anthropic,openai"}
    out = await asyncio.to_thread(stub, "count to 2", offline)
    assert "stub: answer 1/1: This is Fleetwarden's offline demo model" in out, out
    events = await rig.events()
    assert len(events) == 1 and (events[0].cost_usd or 0) > 0
    async with FakeProvider(default=Turn(text="real")) as fake:
        out = await asyncio.to_thread(stub, "count to 2", {"ANTHROPIC_BASE_URL": fake.base_url})
        assert "stub: 2" in out and "answer" not in out, out
        assert fake.requests == []


async def test_a_request_as_large_as_the_proxy_takes_is_answered(rigs: Any) -> None:
    """A long conversation (2 MiB of text, past aiohttp's 1 MiB default) is answered and
    counted by the offline provider, not refused with a 413 the proxy would not give."""
    rig = await rigs(Config.default(Path("/srv/fw")))
    body = body_for("anthropic", False)
    body["messages"] = [{"role": "user", "content": "word " * (2 * 1024 * 1024 // 5)}]
    url = rig.proxy.urls_for(AGENT)["anthropic"] + "/v1/messages"
    headers = {**key_headers("anthropic"), "Content-Type": "application/json"}
    raw = io.BytesIO(json.dumps(body).encode())  # streamed: aiohttp warns of one large bytes
    async with rig.http.post(url, data=raw, headers=headers) as response:
        status, data = response.status, await response.read()
    assert status == 200, data[:300]
    (event,) = await rig.events()
    assert event.tokens.input == answer(body).input_tokens > 500_000
