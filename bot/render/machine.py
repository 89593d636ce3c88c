"""The machine answers: what a shell verb's ``--json`` (``fleetwarden ps --json``) prints,
as data a script reads (:attr:`bot.commands.routing.request.Reply.data`), shaped here from the same
facts the chat answer is rendered from. ``docs/commands.md`` ("Answers as JSON") documents
each object; a field is added, never renamed or removed. Times are ISO 8601 in UTC,
``null`` when unknown; words an agent wrote are data, never markup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.render.work.task_exports import task_row
from fleet.budgets.model import BudgetStatus
from fleet.ledger.records.approvals import ApprovalRequest
from fleet.model import ExitInfo
from fleet.runs.output.stories import RunStory
from fleet.supervisor.admission.request import Queued
from fleet.supervisor.status import AgentStatus
from fleet.tasks.views import MissionView, TaskView


def when(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def agent(status: AgentStatus) -> dict[str, object]:
    """One agent as ``ps`` lists it."""
    return {
        "name": status.name,
        "state": status.state.value,
        "reason": status.reason,
        "runtime": status.runtime,
        "backend": status.backend,
        "model": status.model,
        "host": status.host,
        "pid": status.pid,
        "started_at": when(status.started_at),
        "ended_at": when(status.ended_at),
        "exit_code": status.exit_code,
        "last_activity": when(status.last_activity),
        "last_heartbeat": when(status.last_heartbeat),
        "tokens_today": status.tokens_today,
        "usd_today": status.usd_today,
        "queued_until": when(status.queued_until),
        "frozen": status.frozen,
        "removed_from_roster": status.removed_from_roster is not None,
    }


def ps(statuses: Sequence[AgentStatus], queued: int, problems: Sequence[str]) -> dict[str, object]:
    """``ps``: every agent, how many launches wait, what is wrong beyond the agents."""
    return {"agents": [agent(s) for s in statuses], "queued": queued, "problems": list(problems)}


def spawned(status: AgentStatus, started: bool, run: int | None) -> dict[str, object]:
    """``spawn`` (and ``task start``) that launched ``status``'s agent, or found it running."""
    return {
        "agent": status.name,
        "run": run,
        "state": status.state.value,
        "started": started,
        "already_running": not started,
        "queued": False,
        "pid": status.pid,
    }


def spawn_queued(name: str, queued: Queued) -> dict[str, object]:
    """``spawn`` whose launch waits in the queue: answered at once, never waited for."""
    entry = queued.entry
    return {
        "agent": name,
        "run": None,
        "state": "queued",
        "started": False,
        "already_running": False,
        "queued": True,
        "queue_id": None if entry is None else entry.id,
        "why": queued.why,
        "until": when(queued.until),
        "already_queued": queued.already,
    }


def stopped(name: str, info: ExitInfo) -> dict[str, object]:
    """``stop NAME``: how its run ended."""
    return {"agent": name, "state": "stopped", "exit_code": info.exit_code, "reason": info.reason}


def restarted(status: AgentStatus) -> dict[str, object]:
    """``restart NAME``: its new run."""
    return {"agent": status.name, "state": status.state.value, "pid": status.pid}


def sent(name: str, ended: str | None = None) -> dict[str, object]:
    """``send NAME TEXT``: delivered; ``ended``: why the follow-up's run ended at once."""
    return {"agent": name, "sent": True, "ended_at_once": ended}


def runs(name: str, stories: Sequence[RunStory]) -> dict[str, object]:
    """``runs NAME``: its latest runs, newest first, each with how it ended."""
    rows = []
    for story in stories:
        run, start, end = story.report.run, story.report.start, story.report.end
        rows.append(
            {
                "id": run.id,
                "started_at": when(run.started_at),
                "ended_at": when(run.ended_at),
                "exit_code": run.exit_code,
                "host": run.host,
                "runtime": story.runtime,
                "trigger": None if start is None else start.trigger,
                "outcome": None if end is None else end.outcome,
                "why": None if end is None else end.why,
                "last_message": None if end is None else end.last_message,
                "tokens": sum(total.tokens.total for total in story.usage),
                "usd": _usd(story),
            }
        )
    return {"agent": name, "runs": rows}


def _usd(story: RunStory) -> float | None:
    priced = [total.cost_usd for total in story.usage if total.cost_usd is not None]
    return round(sum(priced), 6) if priced else None


def tasks(views: Sequence[TaskView], missions: Mapping[int, str]) -> dict[str, object]:
    """``tasks``: each task as ``fleetwarden tasks --json`` gives it."""
    return {"tasks": [task_row(view, missions, False) for view in views]}


def task(view: TaskView, missions: Mapping[int, str]) -> dict[str, object]:
    """``task ID``: the task as ``fleetwarden tasks --json`` gives it."""
    return {"task": task_row(view, missions, False)}


def mission(view: MissionView) -> dict[str, object]:
    """``mission NAME``: the mission, its own tasks and its sub-missions', nested."""
    names = {view.mission.id: view.mission.name}
    names.update(_names(view.subs))
    record = view.mission
    return {
        "mission": {
            "id": record.id,
            "name": record.name,
            "title": record.title,
            "parent": None if record.parent is None else names.get(record.parent),
            "created_by": record.created_by,
            "created_at": when(record.created_at),
        },
        "tasks": [task_row(t, names, False) for t in view.tasks],
        "missions": [mission(sub) for sub in view.subs],
    }


def _names(subs: Sequence[MissionView]) -> dict[int, str]:
    found: dict[int, str] = {}
    for sub in subs:
        found[sub.mission.id] = sub.mission.name
        found.update(_names(sub.subs))
    return found


def answered(done: ApprovalRequest) -> dict[str, object]:
    """``approve`` / ``deny``: the request as it was answered."""
    return {
        "id": done.id,
        "agent": done.agent,
        "run": done.run_id,
        "kind": done.kind.value,
        "tool": done.tool,
        "state": done.state.value,
        "decision": None if done.decision is None else done.decision.value,
        "answered_by": done.answered_by,
        "how": done.how,
        "reason": done.reason,
    }


def budgets(statuses: Sequence[BudgetStatus]) -> dict[str, object]:
    """``budget``: each budget's window, use against its limit, and pace."""
    return {"budgets": [budget(status) for status in statuses]}


def budget(status: BudgetStatus) -> dict[str, object]:
    """One budget as it stands."""
    spec = status.budget
    return {
        "scope": str(spec.scope),
        "limit_tokens": spec.limit_tokens,
        "limit_usd": spec.limit_usd,
        "unit": status.unit,
        "used": status.used,
        "limit": status.limit,
        "usd_used": status.usd_used,
        "window_start": when(status.start),
        "window_end": when(status.end),
        "pace_ratio": status.pace_ratio,
        "status": status.status.value,
        "step": status.step.value,
        "projected_exhaustion": when(status.projected_exhaustion),
        "queued_until": when(status.queued_until),
        "cutoff": spec.cutoff.value,
        "source": spec.source,
    }
