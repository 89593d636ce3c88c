"""Pure renderers of runs: the summary posted when a run ends, ``runs NAME``, and the
answer to a ``spawn`` or ``send`` whose run ended at once. The agent's last message is
quoted and escaped as the agent's (:mod:`bot.text.agent_text`). The reason a run ended (it may
repeat what the agent's CLI or its host said) and the models that served it (names an
agent chose) pass the guard (:mod:`fleet.redaction.guard`: one line, bounded, nothing
hidden) and are escaped: plain text in chat and on the dashboard alike, never markup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.render.fleet import WHY_CAP, duration, money
from bot.render.work.changes import change_block, refused_all
from bot.text.agent_text import cut, quoted, said
from fleet.ledger.stores.running.runs import RunEnd
from fleet.ledger.stores.spend.usage_rows import NOT_SERVED
from fleet.metering import units
from fleet.runs.output.stories import RunStory
from fleet.transcript.story import Outcome

ANSWER_CAP = 700  # characters of the agent's last message in a summary
DOOR_CAP = 160  # of the git door's refusal on the headline
TASK_CAP = 300  # of the task's spend line
_ICONS = {
    Outcome.FINISHED.value: "✅",
    Outcome.FAILED.value: "❌",
    Outcome.STOPPED.value: "⏹",
    Outcome.TIMED_OUT.value: "⏱",
    Outcome.RESTARTED.value: "🔁",
    Outcome.CUT_OFF.value: "⛔",
    Outcome.LOST.value: "❔",
}


def wall_time(story: RunStory, now: datetime) -> str:
    run = story.report.run
    end = run.ended_at or now
    return duration((end - run.started_at).total_seconds())


def headline(story: RunStory, now: datetime) -> str:
    """One line: the agent, how its run went, for how long, and why when it did not finish
    — or, when it finished but the git door refused its push and nothing of it reached its
    branch, that, with the door's words."""
    run, end = story.report.run, story.report.end
    name = f"**{run.agent}**"
    if run.ended_at is None:
        return f"▶ {name} running for {wall_time(story, now)} (run {run.id})"
    if end is None:  # ended before run reports were kept
        return f"{name} ended after {wall_time(story, now)}: {run.reason or 'no reason recorded'}"
    icon = _ICONS.get(end.outcome, "•")
    change = story.change
    refused = change is not None and refused_all(change)
    if refused and end.outcome == Outcome.FINISHED.value:
        icon = "⚠"  # finished, but nothing of it reached its branch
    line = f"{icon} {name} {end.outcome} after {wall_time(story, now)}"
    if end.outcome != Outcome.FINISHED.value and end.why:
        # It may quote what the agent's CLI or its host said: on this line, as text.
        line += f": {said(end.why, WHY_CAP)}"
    elif refused and change is not None:  # the door's words quote the agent's: as text
        line += f", but the git door refused its push: {said(change.refused[-1], DOOR_CAP)}"
    return line


def summary(
    story: RunStory, now: datetime, quote: str | None = None, task: str | None = None
) -> str:
    """The summary of a run: outcome and why, its answer, what Fleetwarden metered (and
    ``quote``: what it was quoted when it was admitted; ``task``: the spend line of the task
    it was done for, :func:`fleet.tasks.spent.spend_line`), the models that served it,
    where it worked, and where it came from."""
    report = story.report
    parts = [headline(story, now)]
    end = report.end
    if end is not None and end.last_message:
        answer = cut(end.last_message, ANSWER_CAP, f": `logs {report.run.agent}`")
        parts.append(quoted(answer))  # the agent's, under the headline naming it
    parts.append(_spend(story, end))
    if quote:
        parts.append(quote)
    if task:
        parts.append(said(task, TASK_CAP))
    models = _models(story)
    if models:
        parts.append(models)
    where = _where(story)
    if where:
        parts.append(where)
    if story.change is not None:  # what it left on its branch
        parts.append(change_block(story.change))
    parts.append(_footer(story))
    return "\n\n".join(parts)


def _spend(story: RunStory, end: RunEnd | None) -> str:
    turns = end.turns if end is not None else None
    bits = []
    if turns is not None:
        bits.append(f"{turns} turn{'s' if turns != 1 else ''}")
    requests = story.requests
    if requests:
        bits.append(f"{requests} model request{'s' if requests != 1 else ''}")
        bits.append(units.tokens_words(story.tokens))
        bits.append(money(story.cost_usd) if story.cost_usd is not None else "cost not priced")
    else:
        bits.append("no model requests")
    if end is not None and end.tool_calls:
        bits.append(f"{end.tool_calls} tool call{'s' if end.tool_calls != 1 else ''}")
    line = " · ".join(bits) + (" (metered by Fleetwarden)" if requests else "")
    if end is not None and end.cli_cost_usd is not None:
        line += f"; the CLI's own count: {money(end.cli_cost_usd)}"
    return line


def _models(story: RunStory) -> str:
    """The models that served the run: names an agent chose, or its provider, so text."""
    served = [u for u in story.usage if u.model != NOT_SERVED]
    refused = sum(u.requests for u in story.usage if u.model == NOT_SERVED)
    line = ""
    if served:
        names = ", ".join(
            f"{said(u.model)} ({u.requests})" if len(served) > 1 else said(u.model) for u in served
        )
        line = f"Served by {names}"
    if story.downgrades:
        moved = "; ".join(
            f"{n} from {said(asked)} to {said(got)}" for asked, got, n in story.downgrades
        )
        line += f" — downgraded by its budget: {moved}"
    if refused:
        plural = "s" if refused != 1 else ""
        line += f"{'; ' if line else ''}{refused} request{plural} not served"
    return line


def _where(story: RunStory) -> str:
    start, end = story.report.start, story.report.end
    if start is None or start.workdir is None:
        return ""
    line = f"In `{start.workdir}`"
    before = start.git_before
    after = end.git_after if end is not None else None
    if before is not None or after is not None:
        if end is None:
            line += f" · git `{before}`"
        elif before == after:
            line += f" · git `{before}` (unchanged)"
        else:
            line += f" · git `{before or 'none'}` → `{after or 'none'}`"
    return line


def _footer(story: RunStory) -> str:
    report = story.report
    start = report.start
    bits = [f"{report.run.agent} · {story.runtime} · run {report.run.id}"]
    if start is not None:
        bits.append(start.trigger)
        if start.accounts:
            bits.append("account " + ", ".join(start.accounts))
    if report.host:
        bits.append(f"on {report.host}")
    if story.change is not None and story.change.fleetwarden:
        bits.append(f"Fleetwarden {story.change.fleetwarden}")
    return "_" + " · ".join(bits) + "_"


def runs(
    name: str,
    stories: Sequence[RunStory],
    now: datetime,
    quotes: Mapping[int, str] | None = None,
    tasks: Mapping[int, str] | None = None,
) -> str:
    """``runs NAME``: the agent's latest runs, newest first, each summarised (``quotes``:
    each run's quote, as told, by run id; ``tasks``: the spend line of each run's task)."""
    if not stories:
        return f"**{name}** has no runs yet — `spawn {name}` starts one."
    told, tasked = quotes or {}, tasks or {}
    blocks = [
        summary(story, now, told.get(story.report.run.id), tasked.get(story.report.run.id))
        for story in stories
    ]
    plural = "s" if len(stories) != 1 else ""
    head = f"The last {len(stories)} run{plural} of **{name}**, newest first:"
    return head + "\n\n---\n\n" + "\n\n---\n\n".join(blocks)


def ended_at_once(story: RunStory, now: datetime) -> str:
    """The answer to a spawn or send whose run ended in its first moments: one line."""
    return headline(story, now)
