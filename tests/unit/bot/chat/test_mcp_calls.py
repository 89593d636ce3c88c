"""The calls through the MCP door told as they end: one short line in the agent's thread
with the hostile words guarded, and a count for ``/metrics`` whose labels are the config's
server names and the door's fixed outcomes only."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from bot.chat.mcp_calls import OTHER, McpCounted, McpThreadLines
from bot.dashboard.pages.metrics import Metrics, Snapshot
from bot.render.agents.mcp import audit_line, calls_block
from fleet.ledger.stores.running.mcp_calls import McpCallRecord
from fleet.mcp.hooks import McpAudit, Outcome
from fleet.notices import Notice
from tests.unit.chat_fakes import T0

HOSTILE = "*bold* [x](https://evil) <b>`tick`</b>\n# heading @room"


def _audit(name: str = "echo", outcome: Outcome = Outcome.OK, **more: object) -> McpAudit:
    fields: dict[str, object] = {
        "agent": "coder",
        "server": "search",
        "method": "tools/call",
        "name": name,
        "outcome": outcome,
        "seconds": 0.42,
        "bytes_in": 80,
        "bytes_out": 2100,
        "arguments": '{"q": "x"}',
        "result": "ok",
    }
    fields.update(more)
    return McpAudit(**fields)  # type: ignore[arg-type]


def test_a_line_says_server_tool_outcome_time_bytes_and_price() -> None:
    """A call's line names the server, the tool, how it ended, its time, its bytes and its
    price, on one line."""
    line = audit_line(_audit(), 0.02)
    assert line.startswith("🔌 MCP search · “echo” → ok in 0.4s (80 bytes → 2.1 kB), $0.02")
    assert 'args: {"q": "x"}' in line
    assert "\n" not in line


def test_hostile_tool_names_arguments_and_reasons_are_escaped_on_one_line() -> None:
    """A tool's name, its arguments and a reason the server chose reach chat escaped: no
    markup, no link, no new line (so no heading)."""
    line = audit_line(_audit(HOSTILE, Outcome.ERROR, arguments=HOSTILE, why=HOSTILE))
    assert "\n" not in line
    for raw in ("*bold*", "[x](", "<b>", "`tick`"):
        assert raw not in line
    assert "\\*bold\\*" in line


async def test_thread_lines_post_a_feed_notice_into_the_agents_thread_only() -> None:
    """Each call is one feed notice for its agent, never the home room; a billed call shows
    its price, a refused one does not."""
    posted: list[Notice] = []

    async def post(notice: Notice) -> None:
        posted.append(notice)

    lines = McpThreadLines(post, batch=0, gap=0)
    await lines(_audit(cost_usd=0.02))
    await lines.drain()
    await lines(_audit(outcome=Outcome.REFUSED, why="not on the allow-list"))
    await lines.drain()
    assert [(n.agents, n.home_too, n.feed) for n in posted] == [(("coder",), False, True)] * 2
    assert "$0.02" in posted[0].markdown and "$" not in posted[1].markdown
    assert "refused" in posted[1].markdown and "not on the allow-list" in posted[1].markdown


async def test_calls_that_come_fast_are_one_message_per_batch_and_never_wait_on_chat() -> None:
    """A loop of 50 calls is told in one message per agent (10 lines, then how many more),
    not 50; telling a call returns before chat answers; ``close`` posts what waits at once
    and tells nothing after."""
    posted: list[Notice] = []
    held = asyncio.Event()

    async def post(notice: Notice) -> None:
        await held.wait()  # a chat slow to answer
        posted.append(notice)

    lines = McpThreadLines(post, batch=0.05, gap=0.05)
    for n in range(50):
        await asyncio.wait_for(lines(_audit(f"tool{n}")), 1)  # never waits on the post
    await lines(_audit(agent="other"))
    held.set()
    await lines.drain()
    by_agent = {n.agents: n.markdown for n in posted}
    assert len(posted) == 2, posted
    coder = by_agent[("coder",)].splitlines()
    assert len(coder) == 11 and "tool0" in coder[0] and "tool9" in coder[9]
    assert coder[10] == "… and 40 more MCP calls (`runs coder` lists them)"
    held.clear()
    slow = McpThreadLines(post, batch=60, gap=60)
    await slow(_audit("late"))
    held.set()
    await asyncio.wait_for(slow.close(), 1)
    assert "late" in posted[-1].markdown
    await slow(_audit("after"))
    await slow.drain()
    assert "after" not in posted[-1].markdown and len(posted) == 3


async def test_close_never_cuts_a_post_under_way_and_posts_what_came_during_it() -> None:
    """``close`` while a batch is being posted waits for that post (its lines are not lost)
    and then posts the lines that came meanwhile, at once."""
    posted: list[Notice] = []
    posting, go_on = asyncio.Event(), asyncio.Event()

    async def post(notice: Notice) -> None:
        posting.set()
        await go_on.wait()
        posted.append(notice)

    lines = McpThreadLines(post, batch=0, gap=60)
    await lines(_audit("first"))
    await posting.wait()  # the first batch is being posted
    await lines(_audit("second"))
    closing = asyncio.create_task(lines.close())
    await asyncio.sleep(0)
    go_on.set()
    await asyncio.wait_for(closing, 1)  # not the 60 s gap
    assert ["first" in posted[0].markdown, "second" in posted[1].markdown] == [True, True]


async def test_metrics_count_calls_by_config_server_and_outcome_only() -> None:
    """``fleetwarden_mcp_calls_total{server,outcome}`` counts each call; a server the config
    does not name counts under (other); no tool name is ever a label."""
    metrics = Metrics()
    counted = McpCounted(metrics.mcp_called, frozenset({"search"}))
    await counted(_audit(HOSTILE))
    await counted(_audit(outcome=Outcome.DENIED))
    await counted(_audit(server="made-up"))

    async def usage(after: int) -> tuple[list[object], int]:
        return [], after

    text = (await metrics.render(Snapshot(), usage)).decode()  # type: ignore[arg-type]
    samples = {
        (s.labels["server"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fleetwarden_mcp_calls_total"
    }
    assert samples == {("search", "ok"): 1.0, ("search", "denied"): 1.0, (OTHER, "ok"): 1.0}
    assert "bold" not in text


def test_the_runs_block_lists_each_call_with_its_run_and_task() -> None:
    """``runs NAME``'s block lists the calls newest first, each with its run and task; no
    calls, no block."""
    call = McpCallRecord(T0, "coder", 7, 3, "search", "tools/call", "echo", "ok", 0.1, 1, 2)
    block = calls_block([call])
    assert "The last 1 MCP call, newest first:" in block
    assert "- run #7, task #3: 🔌 MCP search · “echo” → ok" in block
    assert calls_block([]) == ""
