"""A real Claude Code under a cap on its run: launched by the supervisor, its requests
through the real metering proxy to the fake provider. Its first answer spends past the
cap; the next request is refused in Anthropic's error shape, Claude Code stops on it
(the refusal is not one it retries), and the agent's thread is told once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.backends.process import SubprocessBackend
from fleet.budgets.runs.caps import CappedPolicy, RunCaps
from fleet.budgets.runs.watch import RunCapWatch
from fleet.ledger import Ledger
from fleet.metering.config import MeteringSettings
from fleet.metering.counting.events import Outcome
from fleet.metering.policy import AllowAll
from fleet.metering.proxy import MeteringProxy
from fleet.model import AgentSpec, RunBudget
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunSpend
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.budgets.test_limits_bind import Board
from tests.integration.metering.test_metering_real_clis import (
    ACCEPT,
    KEYS,
    NOTE,
    REPLY,
    TEXT_USAGE,
    TOOL_USAGE,
)
from tests.integration.runtimes.test_fleet_real_clis import ended
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

AGENT = AgentName("claude-1")
CAP = 1000  # the tool turn alone spends ~6,000 tokens


async def test_claude_code_is_refused_past_its_run_cap_and_stops(tmp_path: Path) -> None:
    """One request served (it spends past the cap), the next refused with 400 naming the
    cap, never forwarded; Claude Code ends its run; one alert in the agent's thread."""
    cli("claude")
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text(NOTE + "\n")
    async with FakeProvider(default=Turn(text=REPLY, usage=TEXT_USAGE), accept=ACCEPT) as fake:
        fake.add(
            Turn(
                text="",
                tool=ToolCall("Read", {"file_path": str(work / "notes.txt")}),
                usage=TOOL_USAGE,
            )
        )
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        board = Board()
        watch = RunCapWatch(RunCaps(), ledger.agents, ledger.runs, board, SystemClock())
        route = ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)
        proxy = MeteringProxy(
            tmp_path / "state",
            routes={"anthropic": route},
            sink=ledger.metering.record_metering,
            settings=MeteringSettings(flush_interval=0.05),
            policy=CappedPolicy(AllowAll(), watch.caps),
        )
        path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        spec = AgentSpec(
            name=AGENT,
            runtime="claude",
            workdir=work,
            secret_env=("ANTHROPIC_API_KEY",),
            timeout=60.0,
            run_budget=RunBudget(max_tokens=CAP),
        )
        fleet = real_fleet(
            stores=fleet_stores(ledger),
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": SubprocessBackend()},
                settings=FleetSettings(state_dir=tmp_path / "state"),
                environ={"PATH": ":".join(dict.fromkeys(path)), "LANG": "C.UTF-8", **KEYS},
                spend=RunSpend(provider_urls=proxy, run_caps=watch),
            ),
            roster={AGENT: spec},
        )
        fleet.subscribe(watch.on_fleet_event)
        try:
            await proxy.start()
            await watch.restore()
            await fleet.start()
            await fleet.spawn(
                LaunchRequest(AGENT, prompt="read notes.txt and tell me what it says")
            )
            await ended(ledger, AGENT)
            logs = "\n".join(await fleet.logs(AGENT, 5000))
            await proxy.recorder.flush()
            events = await ledger.metering.usage_events()
        finally:
            record = await ledger.agents.get_agent(AGENT)
            if record is not None and record.state.is_live:
                await fleet.stop_agent(AGENT, force=True)
            await fleet.stop()
            await proxy.stop()
            await watch.drain()
            await ledger.close()
    context = f"{logs[-4000:]}\nledger: {events}"
    served = [e for e in events if e.outcome is Outcome.OK]
    refused = [e for e in events if e.outcome is Outcome.REFUSED]
    assert len(served) == 1 and len(fake.emitted) == 1, context
    assert refused and all(e.status == 400 for e in refused), context
    assert f"run capped at {CAP:,} tokens: refused" in str(refused[0].reason), context
    assert f"run capped at {CAP:,} tokens" in logs, context  # Claude shows the refusal
    assert len(refused) <= 2, context  # a 400 is not retried
    assert [n.agents for n in board.posted] == [(AGENT,)]
    assert board.posted[0].alert
