"""The ``mcp_calls`` table and the ledger's audit of the MCP door, on SQLite and on
PostgreSQL (each test runs on both): a call's row with its run and task, and a priced
call billed as a ``usage`` row that a run's spend reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.ledger.stores.running.mcp_calls import MAX_TEXT, McpCallRecord
from fleet.mcp.audits import PROVIDER, McpLedgerAudit, model_of
from fleet.mcp.hooks import McpAudit, Outcome
from fleet.metering.counting.events import Outcome as UsageOutcome
from fleet.metering.counting.events import Tokens, UsageEvent
from fleet.model import AgentSpec, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0


def _audit(server: str = "docs", outcome: Outcome = Outcome.OK, **more: object) -> McpAudit:
    fields: dict[str, object] = {
        "agent": "coder",
        "server": server,
        "method": "tools/call",
        "name": "echo",
        "outcome": outcome,
        "seconds": 0.5,
        "bytes_in": 40,
        "bytes_out": 120,
        "arguments": '{"text": "hi"}',
        "result": "hi",
    }
    fields.update(more)
    return McpAudit(**fields)  # type: ignore[arg-type]


async def _run(ledger: Ledger, agent: str = "coder") -> int:
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName(agent), runtime="stub"), DesiredState.RUNNING
    )
    handle = RunHandle("subprocess", 11, 11, Path("/tmp/r"), Path("/tmp/l"), None, agent)
    return (await ledger.runs.start_run(agent, handle)).id


def _auditor(ledger: Ledger, clock: ManualClock) -> McpLedgerAudit:
    return McpLedgerAudit(
        calls=ledger.mcp_calls,
        runs=ledger.runs,
        tasks=ledger.tasks,
        metering=ledger.metering,
        clock=clock,
    )


async def test_ledger_keeps_a_call_and_reads_it_back_by_agent_and_run(ledger: Ledger) -> None:
    """A call kept is read back whole, by its agent and by its run, texts cut at the cap."""
    run_id = await _run(ledger)
    long = "x" * (MAX_TEXT + 50)
    await ledger.mcp_calls.record_call(
        McpCallRecord(
            T0,
            "coder",
            run_id,
            None,
            "docs",
            "tools/call",
            "echo",
            "ok",
            0.25,
            10,
            20,
            long,
            "r",
            "",
            0.5,
        )
    )
    [call] = await ledger.mcp_calls.calls("coder")
    assert (call.agent, call.run_id, call.server, call.name, call.outcome) == (
        "coder",
        run_id,
        "docs",
        "echo",
        "ok",
    )
    assert (call.bytes_in, call.bytes_out, call.cost_usd, call.at) == (10, 20, 0.5, T0)
    assert len(call.arguments) == MAX_TEXT
    assert [c.id for c in await ledger.mcp_calls.calls_of_run(run_id)] == [call.id]
    assert await ledger.mcp_calls.counts_of_runs([run_id, run_id + 1]) == {run_id: (1, 0.5)}


async def test_audit_writes_the_call_with_its_open_run_and_task(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A call during a run bound to a task is kept with that run and that task; a free
    server's call bills nothing."""
    run_id = await _run(ledger)
    task = await ledger.tasks.add_task(NewTask("Fix login", "chat", "op"), NO_PROJECTION)
    await ledger.tasks.add_run(task.id, run_id)
    await _auditor(ledger, clock)(_audit())
    [call] = await ledger.mcp_calls.calls("coder")
    assert (call.run_id, call.task_id, call.cost_usd) == (run_id, task.id, None)
    assert (call.arguments, call.result) == ('{"text": "hi"}', "hi")
    assert await ledger.metering.usage_events() == []


async def test_audit_of_a_call_with_no_run_open_keeps_it_without_one(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A call whose agent has no run open (it ended meanwhile) is still kept, run unknown."""
    run_id = await _run(ledger)
    await ledger.runs.end_run(run_id, ExitInfo(0, "exited"))
    await _auditor(ledger, clock)(_audit(outcome=Outcome.REFUSED, why="not allowed"))
    [call] = await ledger.mcp_calls.calls("coder")
    assert (call.run_id, call.task_id, call.outcome, call.why) == (
        None,
        None,
        "refused",
        "not allowed",
    )


async def test_a_priced_call_is_billed_as_usage_the_run_spend_reads(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A call the door billed costs its price, whatever its end (a timeout too): in the row
    and in a ``usage`` row of provider ``mcp`` (so a run's spend and the budgets see it); a
    refused call of the same server, billed nothing, costs nothing."""
    await _run(ledger)
    auditor = _auditor(ledger, clock)
    await auditor(_audit("search", cost_usd=0.25))
    await auditor(_audit("search", Outcome.TIMEOUT, cost_usd=0.25))
    await auditor(_audit("search", Outcome.REFUSED))
    calls = await ledger.mcp_calls.calls("coder")
    assert [c.cost_usd for c in calls] == [None, 0.25, 0.25]
    usage = await ledger.metering.usage_events()
    assert {(u.provider, u.served_model, u.cost_usd, u.priced) for u in usage} == {
        (PROVIDER, model_of("search"), 0.25, True)
    }
    assert len(usage) == 2
    spent = await ledger.runs.spent_since("coder", T0 - timedelta(minutes=1))
    assert spent == (0, 0.5)


async def test_a_priced_call_is_not_taken_for_the_agents_current_model(
    ledger: Ledger, clock: ManualClock
) -> None:
    """After a model request, a priced MCP call's usage row leaves the agent's current model
    (the fleet page's) the model's; the agent's page lists the call."""
    await _run(ledger)
    model = UsageEvent(
        T0 - timedelta(seconds=30), "coder", "anthropic", "anthropic", "claude-x", "claude-x",
        Tokens(10, 5), True, 200, UsageOutcome.OK, 40.0, 10.0, None,
    )  # fmt: skip
    await ledger.metering.record_metering([model], [])
    await _auditor(ledger, clock)(_audit("search", cost_usd=0.25))
    assert await ledger.dashboard.last_models(T0 - timedelta(hours=1)) == {
        "coder": ("claude-x", "claude-x", None)
    }
    assert [c.server for c in await ledger.dashboard.mcp_calls("coder", 5)] == ["search"]
