"""Pure renderers of the work register: what ``task new`` and ``task start`` answer, the
``tasks`` list, a task's story (``task T``, with the commit its review approved), a mission
(``mission M``) and the ``missions`` list. Titles, bodies, agents' words and forge
references are hostile text: escaped here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bot.render.fleet import DASH, compact
from bot.text.agent_text import escape, quoted, said
from fleet.budgets.quoting.words import usd
from fleet.ledger.records.peers import ReviewRecord
from fleet.ledger.records.tasks import ENDED_STATES, TASK_STATES, MissionRecord, TaskRecord
from fleet.ledger.stores.running.runs import RunReport
from fleet.metering import units
from fleet.repos.landing.approval import standing
from fleet.tasks.views import MissionView, TaskView, Totals

ENDED_SHOWN: Final = 5
"""How many ended tasks ``tasks`` shows (the latest), before saying how many more."""
TITLE_SHOWN: Final = 120
BODY_SHOWN: Final = 600
BODY_LINES: Final = 8
RUNS_SHOWN: Final = 5
SUBS_SHOWN: Final = 8


def named(task: TaskRecord) -> str:
    """``#12 fix-login``, escaped."""
    return f"#{task.id} {said(task.name, 64)}"


def _pair(pair: tuple[float, float], dollars: bool) -> str:
    if dollars:
        return f"{usd(pair[0])} (p90 {usd(pair[1])})"
    return f"{units.tokens_words(pair[0])} (p90 {units.tokens(pair[1])})"


def projected(task: TaskRecord) -> str:
    """``projected $0.40 (p90 $0.90) from 5 past tasks (agent coder · repository app)``,
    or that there is none yet."""
    projection = task.projection
    pair = projection.usd or projection.tokens
    if pair is None:
        return "no projection yet: no finished task of its kind"
    count = projection.count
    past = f"{count} past task{'s' if count != 1 else ''}"
    return (
        f"projected {_pair(pair, projection.usd is not None)} from {past} "
        f"({said(projection.basis, 120)})"
    )


def made(task: TaskRecord) -> str:
    """What ``task new`` answers."""
    title = said(task.title, TITLE_SHOWN)
    return f"Task {named(task)} made: {projected(task)}.\n{title}"


def task_line(task: TaskRecord) -> str:
    """The line a ``spawn`` with a prompt, or a ``task start``, adds: its task."""
    return f"Task {named(task)} · {projected(task)}"


def waiting(task: TaskRecord, why: str) -> str:
    """What ``task start`` answers of a task held for others."""
    return (
        f"Task {named(task)} {said(why, 300)}: it starts here once "
        f"{'that is' if len(task.after) < 2 else 'they are'} done."
    )


def ended(task: TaskRecord, stopped: str | None, *, forge_going: bool = False) -> str:
    """What ``task done`` and ``task cancel`` answer; ``stopped``: the agent whose run of
    it was stopped; ``forge_going``: its forge run goes on until its pull request closes."""
    spent = ""
    if task.finished is not None:
        spent = f" It cost {_spent(task.finished.tokens, task.finished.usd)}."
    text = f"Task {named(task)} is {task.state}.{spent}"
    if stopped is not None:
        kept = f"; what it committed stays on {said(task.branch, 80)}" if task.branch else ""
        text += f" {stopped}'s run of it was stopped{kept}."
    if forge_going:
        text += " Its forge run goes on until its pull request closes."
    return text


def _spent(tokens: int, dollars: float | None) -> str:
    return units.tokens_words(tokens) + ("" if dollars is None else f", {usd(dollars)}")


def _cost(view: TaskView) -> str:
    """``$0.40→$0.12``: its projected median against what it cost so far."""
    projection, actual = view.task.projection, view.actual
    if projection.usd is not None or actual.usd is not None:
        before = usd(projection.usd[0]) if projection.usd is not None else DASH
        after = usd(actual.usd) if actual.usd is not None else compact(actual.tokens) + " tok"
        return f"{before}→{after}"
    before = compact(round(projection.tokens[0])) if projection.tokens is not None else DASH
    return f"{before}→{compact(actual.tokens)} tok"


def row(view: TaskView) -> str:
    """``#12 fix-login · working · coder · $0.40→$0.12``."""
    task = view.task
    agent = said(task.agent, 40) if task.agent else "no agent"
    return f"{named(task)} · {task.state} · {agent} · {_cost(view)}"


def board(found: Sequence[TaskView], heading: str) -> str:
    """The ``tasks`` list: open tasks first, in the board's order; of the ended ones the
    latest few and how many more."""
    if not found:
        return f"{heading}: none. `task new TITLE` makes one."
    order = {state: i for i, state in enumerate(TASK_STATES)}
    open_ = sorted(
        (v for v in found if v.task.state not in ENDED_STATES),
        key=lambda v: (order[v.task.state], v.task.id),
    )
    done = sorted(
        (v for v in found if v.task.state in ENDED_STATES),
        key=lambda v: v.task.ended_at or v.task.updated_at,
        reverse=True,
    )
    lines = [f"{heading}: {len(open_)} open, {len(done)} ended"]
    lines += [f"- {row(v)}" for v in open_]
    if done:
        lines += ["", "Ended, latest first:"]
        lines += [f"- {row(v)}" for v in done[:ENDED_SHOWN]]
        if len(done) > ENDED_SHOWN:
            lines.append(f"… and {len(done) - ENDED_SHOWN} more: `tasks --state ended`")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Story:
    """What a task's story is told from: the task with its actual, the tasks it waits for,
    its runs' reports (newest last), and its mission."""

    view: TaskView
    after: Sequence[TaskRecord]
    runs: Sequence[RunReport]
    mission: MissionRecord | None
    reviews: Sequence[ReviewRecord] = ()


def source(task: TaskRecord) -> str:
    """Where the task came from, in words."""
    ref = task.source_ref
    if task.source == "forge":
        return f"forge issue {said(ref, 200)}" if ref else "a forge issue"
    if task.source == "schedule":
        return f"schedule #{said(ref, 20)}" if ref else "a schedule"
    if task.source == "task":
        return f"task #{said(ref, 20)}" if ref else "another task"
    return {"chat": "chat", "autostart": "the roster's own launch"}.get(task.source, task.source)


def story(told: Story, now: datetime) -> str:
    """``task T``: the task's story, on a phone screen."""
    task, actual = told.view.task, told.view.actual
    why = f" ({said(task.why, 160)})" if task.why else ""
    lines = [
        f"**Task {named(task)}** · {task.state}{why}",
        said(task.title, TITLE_SHOWN),
        f"From {source(task)}, asked by {said(task.asked_by, 80)}, "
        f"{task.created_at:%Y-%m-%d %H:%M} UTC",
    ]
    where = [
        f"mission {said(told.mission.name, 40)}" if told.mission else None,
        f"agent {said(task.agent, 40)}" if task.agent else "no agent yet",
        f"runtime {said(task.runtime, 40)}" if task.runtime else None,
        f"repository {said(task.repo, 60)}" if task.repo else None,
    ]
    lines.append(" · ".join(w for w in where if w))
    if told.after:
        waits = ", ".join(f"{named(t)} ({t.state})" for t in told.after)
        lines.append(f"Waits for: {waits}")
    lines.append(f"Spend: {projected(task)}; actual {_spent(actual.tokens, actual.usd)}")
    if task.error is not None and not task.open:
        lines.append(f"Off by ×{task.error:.2f} ({said(task.error_unit or '', 20)})")
    lines += _runs(told.runs, len(task.runs), now)
    if told.reviews:
        lines.append(review_line(told.reviews))
    if task.branch:
        lines.append(f"Branch: {said(task.branch, 120)}")
    if task.pull_url:
        lines.append(f"PR: {said(task.pull_url, 200)}")
    if task.body and task.body != task.title:
        lines += ["", quoted(_body(task.body))]
    return "\n".join(lines)


def review_line(rounds: Sequence[ReviewRecord]) -> str:
    """``Review: reviewer approved commit 1a2b3c4d5e6f (round 1 of 2); round 2 of 2 reads
    9f8e7d6c5b4a``: the approval that stands (only its commit lands), and the round after
    it, if one was asked; else the last round's state."""
    approved = standing(rounds)
    last = rounds[-1]
    if approved is None:
        state = {"asked": "reads", "changes": "asked for changes at", "ended": "ended at"}
        how = state.get(last.state, last.state)
        return (
            f"Review: round {last.round} of {last.rounds}, {said(last.reviewer, 40)} "
            f"{how} {last.commit[:12]}"
        )
    said_ = (
        f"Review: {said(approved.reviewer, 40)} approved commit {approved.commit[:12]} "
        f"(round {approved.round} of {approved.rounds}); only that commit lands"
    )
    if last.id != approved.id and last.commit != approved.commit:
        if last.state == "asked":
            said_ += f"; round {last.round} of {last.rounds} reads {last.commit[:12]}"
        else:
            said_ += f"; round {last.round} of {last.rounds} at {last.commit[:12]} {last.state}"
    return said_


def _body(body: str) -> str:
    """``body`` escaped, at most :data:`BODY_LINES` lines and :data:`BODY_SHOWN`
    characters of it, saying how much was left out."""
    head = "\n".join(body.strip().splitlines()[:BODY_LINES])[:BODY_SHOWN].rstrip()
    left = len(body.strip()) - len(head)
    return escape(head) + (f"… ({left:,} more characters)" if left > 0 else "")


def _runs(reports: Sequence[RunReport], count: int, now: datetime) -> list[str]:
    if not count:
        return ["No run yet."]
    lines = [f"Runs ({count}):"]
    if count > len(reports):
        lines.append(f"… {count - len(reports)} earlier")
    for report in reports:
        run = report.run
        if run.ended_at is None:
            how = "running"
        elif report.end is not None:
            how = f"{said(report.end.outcome, 20)} ({said(report.end.why, 100)})"
        else:
            how = f"ended ({said(run.reason or 'exited', 100)})"
        lines.append(f"- run {run.id} · {run.started_at:%m-%d %H:%M} · {how}")
    return lines


def _totals(totals: Totals) -> str:
    """``2 of 3 done · projected $1.20 (p90 $2.00) · actual $0.80``."""
    parts = [totals.progress]
    pair = totals.projected_usd or totals.projected_tokens
    if pair is not None:
        parts.append("projected " + _pair(pair, totals.projected_usd is not None))
    if totals.unprojected:
        parts.append(f"{totals.unprojected} unprojected")
    parts.append("actual " + _spent(totals.actual_tokens, totals.actual_usd))
    return " · ".join(parts)


def mission(view: MissionView) -> str:
    """``mission M``: its title, progress and spend, its tasks by state, its sub-missions."""
    record, totals = view.mission, view.totals
    title = f" — {said(record.title, TITLE_SHOWN)}" if record.title else ""
    lines = [f"**Mission {said(record.name, 40)}**{title}", _totals(totals)]
    counts = [f"{n} {state}" for state, n in totals.by_state.items() if n]
    if counts:
        lines.append("Tasks: " + ", ".join(counts))
    order = {state: i for i, state in enumerate(TASK_STATES)}
    own = sorted(view.tasks, key=lambda v: (order[v.task.state], v.task.id))
    lines += [f"- {row(v)}" for v in own[:15]]
    if len(own) > 15:
        lines.append(f"… and {len(own) - 15} more: `tasks --mission {record.name}`")
    if view.subs:
        lines += ["", "Sub-missions:"]
        for sub in view.subs[:SUBS_SHOWN]:
            lines.append(f"- {said(sub.mission.name, 40)}: {_totals(sub.totals)}")
        if len(view.subs) > SUBS_SHOWN:
            lines.append(f"… and {len(view.subs) - SUBS_SHOWN} more")
    if not totals.tasks:
        lines.append(f"No task yet: `task new --mission {record.name} TITLE` adds one.")
    return "\n".join(lines)


def mission_made(record: MissionRecord, parent: MissionRecord | None) -> str:
    """What ``mission new`` answers."""
    under = f", part of {said(parent.name, 40)}" if parent is not None else ""
    title = f": {said(record.title, TITLE_SHOWN)}" if record.title else ""
    return (
        f"Mission {said(record.name, 40)} made{under}{title}. "
        f"`task new --mission {record.name} TITLE` adds a task to it."
    )


def added(record: MissionRecord, tasks: Sequence[TaskRecord]) -> str:
    """What ``mission add`` answers."""
    named_ = ", ".join(named(task) for task in tasks)
    return f"Mission {said(record.name, 40)} now has {named_}: `mission {record.name}` sums it."


def missions(views: Sequence[MissionView], parents: Mapping[int, str], count: int) -> str:
    """The ``missions`` list (``views``, newest first, of ``count``): each with its
    progress and spend."""
    if not views:
        return "No missions. `mission new NAME TITLE` makes one."
    lines = [f"Missions ({count}), newest first:"]
    for view in views:
        record = view.mission
        part = parents.get(record.parent) if record.parent is not None else None
        under = f" (in {said(part, 40)})" if part else ""
        lines.append(f"- {said(record.name, 40)}{under}: {_totals(view.totals)}")
    if count > len(views):
        lines.append(f"… and {count - len(views)} older")
    return "\n".join(lines)
