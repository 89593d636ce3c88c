"""The real agent CLIs, launched by the supervisor through their runtimes, reach the fake
provider only through the metering proxy, and the ledger holds exactly the usage the
provider put on the wire: one row per model request, matched by the provider's request id.

Each run is headless (subprocess backend) in a fresh state dir with a real ledger. The
first model turn calls a harmless tool (read ``notes.txt`` in the agent's workdir), so one
run makes several model requests; the tool's output in the next request shows it ran.
Usage numbers are non-trivial (cache reads and writes, reasoning) so that a field read
from the wrong place, summed instead of kept, or not made disjoint shows. Claude Code's
retry after a cut stream is where the proxy sees what the CLI's own accounting does not.
The CLIs come from ``tests/agent_clis.sh`` (see ``tests/integration/runtimes/test_real_clis.py``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.metering.config import MeteringSettings
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.metering.proxy import MeteringProxy
from fleet.model import AgentSpec, AgentState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunSpend
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import (
    Accepted,
    EmittedUsage,
    FakeProvider,
    RecordedRequest,
    ToolCall,
    Turn,
    Usage,
)
from tests.integration.runtimes.test_fleet_real_clis import settled
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

REPLY = "fleetwarden-metered-reply-5b81"
NOTE = "fleetwarden-note-contents-2c7e"  # what notes.txt holds: seen in the next request
PROMPT = "read notes.txt and tell me what it says"
KEYS = {  # the variable each agent's spec names in secret_env, and its fake value
    "ANTHROPIC_API_KEY": "test-key-metered-anthropic",
    "OPENAI_API_KEY": "test-key-metered-openai",
}
ACCEPT = Accepted(api_keys=frozenset(KEYS.values()))  # the keys the fake provider serves
# Every kind of token, each a different number. Anthropic's wire has no reasoning count;
# OpenAI's folds cache writes into input and cache reads are part of it (see Usage).
TOOL_USAGE = Usage(input=1234, output=156, cache_read=4096, cache_write=512, reasoning=40)
TEXT_USAGE = Usage(input=321, output=45, cache_read=4608, cache_write=96, reasoning=8)


@dataclass(frozen=True)
class Agent:
    """How a runtime is run here: the key variable its spec names, the API and provider
    its model requests use, and a model when the CLI's default will not do."""

    runtime: str
    key_var: str
    api: str
    provider: str
    model: str | None = None

    @property
    def name(self) -> AgentName:
        return AgentName(f"{self.runtime}-1")

    @property
    def key(self) -> str:
        return KEYS[self.key_var]


CLAUDE = Agent("claude", "ANTHROPIC_API_KEY", "anthropic", "anthropic")
# Codex offers its tools (exec_command…) only for a model it has metadata for; with its
# default model it sends none and answers any call with "unsupported call".
CODEX = Agent("codex", "OPENAI_API_KEY", "responses", "openai", model="gpt-5-codex")
PI = Agent("pi", "ANTHROPIC_API_KEY", "anthropic", "anthropic")
OPENCODE = Agent("opencode", "ANTHROPIC_API_KEY", "anthropic", "anthropic")


@dataclass
class Rig:
    """The fake provider behind the metering proxy, a real ledger, and a workdir."""

    fake: FakeProvider
    proxy: MeteringProxy
    ledger: Ledger
    state_dir: Path
    work: Path

    async def run(self, agent: Agent, prompt: str = PROMPT) -> list[str]:
        """Spawn ``agent`` through the supervisor, wait for its run to end (exit 0), and
        flush the proxy's recorder; the agent's log lines."""
        cli(agent.runtime)  # fails with "run bash tests/run.sh" when it is not installed
        path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        spec = AgentSpec(
            name=agent.name,
            runtime=agent.runtime,
            model=agent.model,
            workdir=self.work,
            secret_env=(agent.key_var,),
            timeout=60.0,
        )
        fleet = real_fleet(
            stores=fleet_stores(self.ledger),
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": SubprocessBackend()},
                settings=FleetSettings(state_dir=self.state_dir),
                environ={"PATH": ":".join(dict.fromkeys(path)), "LANG": "C.UTF-8", **KEYS},
                spend=RunSpend(provider_urls=self.proxy),
            ),
            roster={agent.name: spec},
        )
        await fleet.start()
        try:
            await fleet.spawn(LaunchRequest(agent.name, prompt=prompt, collect=False))
            state = await settled(fleet, self.ledger, agent.name)
            logs = await fleet.logs(agent.name, 5000)
            run = await self.ledger.runs.last_run(agent.name)
            context = "\n".join(logs)[-6000:] + f"\nrequests: {self.seen()}"
            stays = state is AgentState.RUNNING  # a live session waiting for its next turn
            assert stays or state is AgentState.EXITED, context
            assert run is not None and run.exit_code == (None if stays else 0), context
        finally:
            record = await self.ledger.agents.get_agent(agent.name)
            if record is not None and record.state.is_live:
                await fleet.stop_agent(agent.name, force=True)
            await fleet.stop()
        await self.proxy.recorder.flush()
        return logs

    def seen(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.fake.requests]

    def model_requests(self) -> list[RecordedRequest]:
        return [r for r in self.fake.requests if r.api is not None]


@pytest.fixture
async def metering_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text(NOTE + "\n")
    async with FakeProvider(default=Turn(text=REPLY, usage=TEXT_USAGE), accept=ACCEPT) as fake:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        routes = {
            "anthropic": ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC),
            "openai": ProviderRoute("openai", fake.base_url, ProviderApi.OPENAI),
        }
        proxy = MeteringProxy(
            tmp_path / "state",
            routes=routes,
            sink=ledger.metering.record_metering,
            settings=MeteringSettings(flush_interval=0.05),
        )
        await proxy.start()
        try:
            yield Rig(fake, proxy, ledger, tmp_path / "state", work)
        finally:
            await proxy.stop()
            await ledger.close()


def disjoint(usage: Usage | None) -> Tokens:
    """The ledger's terms for what the fake emitted (already in the wire's own semantics)."""
    assert usage is not None, "the fake emitted no usage for this answer"
    return Tokens(usage.input, usage.output, usage.cache_read, usage.cache_write, usage.reasoning)


def by_request(rig: Rig, events: list[UsageEvent]) -> dict[str, tuple[UsageEvent, EmittedUsage]]:
    """Each metered event with what the fake emitted for the same request id; fails unless
    both sides hold the same requests, one row each."""
    emitted = {e.request_id: e for e in rig.fake.emitted}
    rows = {e.request_id: e for e in events if e.request_id is not None}
    context = f"\nledger: {events}\nemitted: {rig.fake.emitted}\nrequests: {rig.seen()}"
    assert len(events) == len(rig.fake.emitted) == len(rig.model_requests()), context
    assert len(rows) == len(events) and len(emitted) == len(rig.fake.emitted), context
    assert rows.keys() == emitted.keys(), context
    return {rid: (rows[rid], emitted[rid]) for rid in rows}


def check_ok(event: UsageEvent, emitted: EmittedUsage, agent: Agent) -> None:
    """One complete model request, metered exactly as the fake emitted it."""
    assert event.tokens == disjoint(emitted.usage), (event, emitted)
    assert event.agent == agent.name
    assert event.provider == agent.provider
    assert event.api == agent.api == emitted.api
    assert event.served_model == emitted.model
    assert event.requested_model == emitted.model  # the fake serves what was asked for
    assert event.outcome is Outcome.OK, event.reason
    assert not event.partial
    assert event.status == 200
    assert event.stream is emitted.streamed


def check_routing(rig: Rig, agent: Agent) -> None:
    """Every request the fake saw came through the proxy (which asks for identity encoding
    where the CLIs ask for gzip/br/zstd, and strips the agent's path prefix and key), and
    each model request carries the provider key the spec's secret_env named."""
    secret = rig.proxy.urls_for(agent.name)[agent.provider].rsplit("/", 1)[1]
    other = next(key for var, key in KEYS.items() if var != agent.key_var)
    for request in rig.fake.requests:
        assert "/a/" not in request.path, request.path
        assert request.headers.get("Accept-Encoding") == "identity", request.headers
        sent = [request.path, request.query, *request.headers.values()]
        assert not any(secret in text or other in text for text in sent), sent
    for request in rig.model_requests():
        if agent.api == "responses":
            assert request.headers.get("Authorization") == f"Bearer {agent.key}"
        else:
            assert request.headers.get("x-api-key") == agent.key


def on_the_wire(usage: Usage, api: str) -> Usage:
    """``usage`` as that API reports it, which is what the proxy can read."""
    return usage.seen_as_anthropic() if api == "anthropic" else usage.seen_as_openai()


async def check_tool_run(
    rig: Rig, agent: Agent, tool: ToolCall
) -> tuple[list[UsageEvent], list[str]]:
    """Run ``agent`` with a tool turn then a text turn; the ledger equals what was emitted.
    The ledger's rows and the agent's log lines."""
    rig.fake.add(Turn(text="", tool=tool, usage=TOOL_USAGE))
    logs = await rig.run(agent)
    assert any(REPLY in line for line in logs), "\n".join(logs)[-4000:]
    requests = rig.model_requests()
    assert len(requests) == 2, rig.seen()  # opencode's hidden title request is off
    assert NOTE.encode() not in requests[0].raw
    assert NOTE.encode() in requests[1].raw, "the tool's output is not in the next request"
    events = await rig.ledger.metering.usage_events()
    matched = by_request(rig, events)
    for event, emitted in matched.values():
        check_ok(event, emitted, agent)
    # The rows in request order: the tool turn's, then the text turn's, each disjoint.
    tokens = [matched[e.request_id][0].tokens for e in rig.fake.emitted]
    assert tokens == [disjoint(on_the_wire(u, agent.api)) for u in (TOOL_USAGE, TEXT_USAGE)]
    check_routing(rig, agent)
    return events, logs


def claude_result(logs: list[str]) -> dict[str, Any]:
    """The ``result`` event of Claude Code's stream-json output."""
    results = [json.loads(line) for line in logs if line.startswith('{"type":"result"')]
    assert len(results) == 1, "\n".join(logs)[-4000:]
    result: dict[str, Any] = results[0]
    return result


async def test_claude_tool_turn_is_metered_request_by_request(metering_rig: Rig) -> None:
    """Claude Code: a Read tool turn and a text turn are two ledger rows equal to what the
    provider emitted; its HEAD / preflight passes through the proxy unrecorded."""
    tool = ToolCall("Read", {"file_path": str(metering_rig.work / "notes.txt")})
    events, logs = await check_tool_run(metering_rig, CLAUDE, tool)
    # The preflight reached the upstream (it carries no key: Claude sends none with it).
    heads = [r for r in metering_rig.fake.requests if r.method == "HEAD"]
    assert [r.path for r in heads] == ["/"], metering_rig.seen()
    assert all(e.api == "anthropic" for e in events)  # the preflight left no row
    # With nothing going wrong, Claude's own count agrees with the ledger's sums.
    usage = claude_result(logs)["usage"]
    assert usage["input_tokens"] == sum(e.tokens.input for e in events), usage
    assert usage["output_tokens"] == sum(e.tokens.output for e in events), usage
    assert usage["cache_read_input_tokens"] == sum(e.tokens.cache_read for e in events), usage
    assert usage["cache_creation_input_tokens"] == sum(e.tokens.cache_write for e in events)


async def test_codex_tool_turn_is_metered_request_by_request(metering_rig: Rig) -> None:
    """Codex: an exec_command turn (cat notes.txt) and a text turn, metered in OpenAI's
    semantics made disjoint (cached input out of input, reasoning kept)."""
    await check_tool_run(metering_rig, CODEX, ToolCall("exec_command", {"cmd": "cat notes.txt"}))


async def test_pi_tool_turn_is_metered_request_by_request(metering_rig: Rig) -> None:
    """pi: a read tool turn and a text turn, metered from its Messages streams."""
    await check_tool_run(metering_rig, PI, ToolCall("read", {"path": "notes.txt"}))


async def test_opencode_tool_turn_is_metered_request_by_request(metering_rig: Rig) -> None:
    """opencode: a read tool turn and a text turn, and no hidden title request."""
    tool = ToolCall("read", {"filePath": str(metering_rig.work / "notes.txt")})
    await check_tool_run(metering_rig, OPENCODE, tool)


async def test_claude_retry_after_a_cut_stream_is_metered_though_claude_reports_zero(
    metering_rig: Rig,
) -> None:
    """A stream cut after message_start is recorded partial with the tokens it carried,
    Claude's unstreamed retry ok with its own: exactly what the provider emitted, while
    Claude's result JSON reports zero usage."""
    metering_rig.fake.add(Turn(text="cut short here", usage=TOOL_USAGE, cut_after_events=3))
    metering_rig.fake.add(Turn(text=REPLY, usage=TEXT_USAGE))
    logs = await metering_rig.run(CLAUDE, "say hi")
    cut, retry = metering_rig.fake.emitted
    assert cut.streamed and cut.cut and not retry.streamed and not retry.cut
    # message_start carried the input and cache counts and one output token; no more.
    assert cut.usage == Usage(TOOL_USAGE.input, 1, TOOL_USAGE.cache_read, TOOL_USAGE.cache_write)
    matched = by_request(metering_rig, await metering_rig.ledger.metering.usage_events())
    partial, _ = matched[cut.request_id]
    assert partial.tokens == disjoint(cut.usage)
    assert partial.outcome is Outcome.PARTIAL and partial.partial, partial
    assert partial.stream and partial.agent == CLAUDE.name
    check_ok(matched[retry.request_id][0], retry, CLAUDE)
    assert metering_rig.model_requests()[1].body.get("stream") is not True
    check_routing(metering_rig, CLAUDE)

    result = claude_result(logs)
    assert result["is_error"] is False and result["result"] == REPLY, result
    counted = [
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ]
    assert {key: result["usage"][key] for key in counted} == dict.fromkeys(counted, 0), result
    # Even its per-model tally knows only the retry: the cut request's tokens are the proxy's.
    [by_model] = result["modelUsage"].values()
    assert by_model["inputTokens"] == TEXT_USAGE.input, result
    assert by_model["cacheReadInputTokens"] == TEXT_USAGE.cache_read, result
