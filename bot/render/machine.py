"""The machine answers: what ``fleetwarden VERB --json`` prints, as data a script reads
(:attr:`bot.commands.request.Reply.data`), shaped here from the same facts the chat answer
is rendered from. ``docs/commands.md`` ("Answers as JSON") documents each object; a field
is added, never renamed or removed. Times are ISO 8601 in UTC, ``null`` when unknown;
words an agent wrote are data, never markup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fleet.model import ExitInfo
from fleet.supervisor.admission.request import Queued
from fleet.supervisor.status import AgentStatus


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
