"""What Fleetwarden finds out around a run: whether it can start, what its output says
of how it went, and the run reports the ledger keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.render.agents import runs as render_runs
from fleet.errors import LaunchFailed
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.ledger.stores.running.runs import RunEnd, RunStart
from fleet.metering.counting.events import Tokens, UsageEvent
from fleet.model import AgentSpec, DesiredState, ExitInfo, LaunchPlan, RunHandle
from fleet.names import AgentName
from fleet.runs.layout import MARKER
from fleet.runs.output.facts import check_launchable, read_run
from fleet.runs.output.stories import RunStories
from fleet.tasks.spent import TaskSpend
from fleet.timing.clock import ManualClock
from fleet.transcript.events import AgentEvent, ErrorKind, Said, Text, ToolUsed, Trouble, Unknown
from fleet.transcript.story import Outcome, RunReading, why
from tests.fakes.doubles.usage import metered

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def plan(tmp_path: Path, program: str, path: str = "") -> LaunchPlan:
    return LaunchPlan(argv=(program, "-p"), env={"PATH": path or str(tmp_path)}, cwd=tmp_path)


def test_a_cli_that_is_not_installed_is_named_with_its_npm_package(tmp_path: Path) -> None:
    spec = AgentSpec(AgentName("c1"), runtime="claude")
    with pytest.raises(LaunchFailed) as caught:
        check_launchable(spec, plan(tmp_path, "claude"), accounts={"anthropic": "a"}, environ={})
    assert str(caught.value) == (
        "c1 cannot start: claude is not installed (not on its PATH) — install it with "
        "`npm install -g @anthropic-ai/claude-code`"
    )


def test_a_missing_workdir_is_said_with_the_fix(tmp_path: Path) -> None:
    spec = AgentSpec(AgentName("c1"), runtime="command")
    gone = LaunchPlan(argv=("/bin/true",), env={}, cwd=tmp_path / "gone")
    with pytest.raises(LaunchFailed, match=r"its workdir .*gone does not exist — create it"):
        check_launchable(spec, gone, accounts={}, environ={})


def test_a_cli_without_any_credential_is_refused_naming_accounts(tmp_path: Path) -> None:
    """No account and no key variable: one line naming the fix, before anything runs."""
    exe = tmp_path / "claude"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    spec = AgentSpec(AgentName("c1"), runtime="claude")
    with pytest.raises(LaunchFailed) as caught:
        check_launchable(spec, plan(tmp_path, "claude"), accounts={}, environ={})
    assert str(caught.value) == (
        "c1 cannot start: claude has no credentials — add an account for anthropic (see "
        "docs/accounts.md) and start it again"
    )
    keyed = AgentSpec(AgentName("c1"), runtime="claude", secret_env=("ANTHROPIC_API_KEY",))
    check_launchable(
        keyed, plan(tmp_path, "claude"), accounts={}, environ={"ANTHROPIC_API_KEY": "fake-key"}
    )
    check_launchable(spec, plan(tmp_path, "claude"), accounts={"anthropic": "team"}, environ={})


def test_a_cli_the_offline_provider_answers_needs_no_credential(tmp_path: Path) -> None:
    """With the offline stand-in answering its provider, a CLI with no key starts; with it
    answering only another provider, it is refused as before."""
    exe = tmp_path / "codex"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    spec = AgentSpec(AgentName("c1"), runtime="codex")
    check_launchable(spec, plan(tmp_path, "codex"), accounts={}, environ={}, offline={"openai"})
    with pytest.raises(LaunchFailed, match="codex has no credentials"):
        check_launchable(
            spec, plan(tmp_path, "codex"), accounts={}, environ={}, offline={"anthropic"}
        )


class Words:
    """``say X`` → said, ``tool X`` → a tool, ``auth X`` → an auth error, ``? X`` → unknown."""

    def feed(self, line: str) -> list[AgentEvent]:
        verb, _, rest = line.partition(" ")
        return {
            "say": [Said(rest)],
            "tool": [ToolUsed("Bash", rest)],
            "auth": [Trouble(ErrorKind.AUTH, rest)],
            "?": [Unknown("x", line)],
        }.get(verb, [Text(line)] if line else [])


def test_read_run_reads_only_its_run_and_cr_ends_lines(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_bytes(
        b"say from an older run\n" + b"tool ls\rsay first\r\nauth Not logged in\nsay last"
    )
    offset = len(b"say from an older run\n")
    reading = read_run(log, offset, Words(), MARKER)
    assert (reading.tool_calls, reading.last_message) == (1, "last")
    assert reading.trouble == Trouble(ErrorKind.AUTH, "Not logged in")


def test_why_says_not_logged_in_and_names_the_fix_without_an_account() -> None:
    reading = RunReading()
    reading.add(Trouble(ErrorKind.AUTH, "Not logged in · Please run /login"))
    said = why(
        Outcome.FAILED,
        reading,
        runtime="claude",
        exit_reason="exited with status 1",
        ending_reason=None,
        has_account=False,
    )
    assert said == (
        "not logged in: this agent has no credentials — add an account for claude, see "
        "docs/accounts.md (claude said: Not logged in · Please run /login)"
    )
    with_account = why(
        Outcome.FAILED,
        reading,
        runtime="claude",
        exit_reason="x",
        ending_reason=None,
        has_account=True,
    )
    assert "refused its account's credentials" in with_account


def request(
    second: int, model: str, tokens: Tokens, cost: float | None, asked: str | None = None
) -> UsageEvent:
    """A request of c1's answered ``second`` seconds after T0."""
    return metered(
        "c1",
        T0 + timedelta(seconds=second),
        requested_model=model,
        served_model=model,
        tokens=tokens,
        stream=True,
        cost_usd=cost,
        priced=cost is not None,
        rewritten_from=asked,
    )


async def test_a_summary_counts_what_the_ledger_metered_in_the_run(tmp_path: Path) -> None:
    """The summary's tokens are the ledger's usage rows in the run's span, with its model,
    downgrades, answer, workdir and git HEADs."""
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    try:
        spec = AgentSpec(AgentName("c1"), runtime="claude")
        await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
        handle = RunHandle("subprocess", 10, 10, tmp_path, tmp_path / "output.log")
        run = await ledger.runs.start_run("c1", handle)
        await ledger.runs.record_run_start(
            run, RunStart("spawned by @ann", ("team",), "/srv/repo", "abc", 0)
        )
        usage = [
            request(5, "claude-sonnet-4-5", Tokens(input=1000, output=200), 0.01),
            request(9, "claude-haiku-4-5", Tokens(input=300, output=50), 0.001, "claude-opus-4-1"),
            request(90, "claude-haiku-4-5", Tokens(input=7, output=7), None),  # after the run
        ]
        await ledger.metering.record_metering(usage, [])
        clock.advance(60)
        await ledger.runs.end_run(run.id, ExitInfo(0, "exited with status 0"))
        await ledger.runs.record_run_end(
            run.id,
            RunEnd(
                "finished",
                "exited with status 0",
                git_after="def",
                turns=3,
                last_message="All done: fixed the typo.",
            ),
        )
        story = await RunStories(
            agents=ledger.agents,
            runs=ledger.runs,
            lines=ledger.lines,
            metering=ledger.metering,
            clock=clock,
        ).story(run.id)
        assert story is not None
        assert (story.requests, story.tokens) == (2, 1550)  # not the row after the run ended
        text = render_runs.summary(story, clock.now())
        assert text.startswith("✅ **c1** finished after 1m00s")
        assert "> All done: fixed the typo." in text
        assert "3 turns · 2 model requests · 1,550 tokens · $0.01" in text
        assert "downgraded by its budget: 1 from claude-opus-4-1 to claude-haiku-4-5" in text
        assert "In `/srv/repo` · git `abc` → `def`" in text
        assert text.endswith(
            "_c1 · claude · run 1 · spawned by @ann · account team · on "
            + (story.report.host or "")
            + "_"
        )
        # Bound to a task, its summary shows the task's projection beside its actual.
        task = await ledger.tasks.add_task(
            NewTask("Fix [it](x)", "chat", "@ann"), NO_PROJECTION, []
        )
        await ledger.tasks.add_run(task.id, run.id)
        line = await TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals).of_run(run.id)
        assert line == (
            f"Task #{task.id}: no projection: no finished task of its kind yet · actual so far "
            "$0.01 (1,550 tokens)"
        )
        told = render_runs.summary(story, clock.now(), task=line)
        assert f"\n\nTask #{task.id}: no projection" in told and "$0.01 (1,550 tokens)" in told
        listed = render_runs.runs("c1", [story], clock.now(), tasks={run.id: line})
        assert f"\n\nTask #{task.id}: no projection" in listed
    finally:
        await ledger.close()
