"""How the dashboard's records read as JSON: pure functions from the app's records (an
agent's status, a usage sum, a budget's status) to the fields of the API
(``docs/dashboard-api.md``), and the redaction every text agents or people wrote passes:
a short one an agent, its host or its provider chose (a model's or a tool's name, an exit
reason) also passes the guard every surface uses (:mod:`fleet.redaction.guard`).
:mod:`bot.dashboard.pages.views` reads the records; this module only shapes them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bot.render.forge import web_address
from connectors.health import HealthReport
from fleet.budgets.model import BudgetStatus
from fleet.budgets.resets import reset_tag
from fleet.ledger.records.budgets import Step
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.redaction.guard import SHORT, guarded
from fleet.supervisor.status import AgentStatus

Json = dict[str, Any]


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class Redacted:
    """The app's redactor over what agents and people wrote (reasons, transcripts, audit
    lines): what chat never shows, the dashboard never shows either. Long texts (a
    transcript) are redacted off the event loop, and remembered: a page re-rendered every
    tick with the same transcript redacts it once."""

    _KEEP = 64  # texts remembered: the agent pages open now, and a few more
    _LONGEST = 256 * 1024  # a longer text is redacted each time, never kept
    _KEEP_LINES = 4096  # short texts remembered: every agent's model, reason and problems
    _LONGEST_LINE = 1024

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact
        self._seen: dict[str, str] = {}
        self._lines: dict[tuple[str, int], str] = {}

    def __call__(self, text: str) -> str:
        return self._redact(text)

    def line(self, text: str, limit: int = SHORT) -> str:
        """A short text an agent, its host or its provider chose, guarded: redacted, on
        one line, bounded, nothing in it hidden (:func:`fleet.redaction.guard.guarded`).

        Remembered, as the same models and reasons come back at every tick: a secret
        learnt later (a token issued at a spawn) is one no text seen before could hold."""
        key = (text, limit)
        if (done := self._lines.get(key)) is not None:
            return done
        done = guarded(text, self._redact, limit)
        if len(text) <= self._LONGEST_LINE:
            if len(self._lines) >= self._KEEP_LINES:
                self._lines.pop(next(iter(self._lines)))
            self._lines[key] = done
        return done

    async def long(self, text: str) -> str:
        if not text:
            return text
        if (done := self._seen.get(text)) is not None:
            return done
        done = await asyncio.to_thread(self._redact, text)
        if len(text) > self._LONGEST:
            return done
        if len(self._seen) >= self._KEEP:
            self._seen.pop(next(iter(self._seen)))
        self._seen[text] = done
        return done


def agent_row(
    s: AgentStatus,
    now: datetime,
    cost_today: float,
    model: tuple[str, str, str | None] | None,
    steps: Mapping[str, Json],
    pending: Mapping[str, int],
    redact: Callable[[str], str],
) -> Json:
    beat = (now - s.last_heartbeat).total_seconds() if s.last_heartbeat else None
    problems: list[str] = []
    if s.trouble is not None:  # the watchdog's verdict: never a heartbeat's age alone
        problems.append(s.trouble)
    if s.host_down:
        problems.append(f"host {s.host} down: {s.host_down}")
    if s.frozen:
        problems.append(f"frozen: {s.frozen}")
    step = steps.get(s.name)
    if step is not None and step["step"] in (Step.QUEUE.value, Step.REFUSE.value):
        problems.append(f"budget {step['budget']}: {step['step']}")
    if pending.get(s.name):
        problems.append(f"waiting on {pending[s.name]} approval(s)")
    requested, served, rewritten = model or (s.model or "", s.model or "", None)
    return {
        "name": s.name,
        "host": s.host,
        "state": "unknown" if s.host_down else s.state.value,
        "reason": redact(s.reason) if s.reason else s.reason,
        "runtime": s.runtime,
        "backend": s.backend,
        "model": redact(served or requested or s.model or "") or None,
        "downgraded_from": redact(rewritten) if rewritten else None,
        "pid": s.pid,
        "started_at": iso(s.started_at),
        "heartbeat_age_seconds": round(beat, 1) if beat is not None else None,
        "tokens_today": s.tokens_today or 0,
        "cost_today_usd": round(cost_today, 6),
        "pacing": step,
        "queued_until": iso(s.queued_until),
        "problems": [redact(problem) for problem in problems],
    }


def usage_json(u: Any, line: Callable[[str], str]) -> Json:
    """A usage sum; ``line`` guards its model's name (the agent's choice, or its
    provider's)."""
    return {
        "agent": u.agent,
        "host": u.host,
        "provider": u.provider,
        "model": line(u.model),
        "account": u.account,
        "requests": u.requests,
        "input_tokens": u.input,
        "output_tokens": u.output,
        "cache_read_tokens": u.cache_read,
        "cache_write_tokens": u.cache_write,
        "tokens": u.tokens,
        "cost_usd": round(u.cost_usd, 6),
    }


def budget_json(s: BudgetStatus) -> Json:
    """A budget's status; its reset with how sure it is (``reset_confidence``: ``provider``,
    ``user``, ``estimated`` or ``unknown``, :mod:`fleet.budgets.resets`; in words, the tag
    chat shows, ``reset_confidence_text``)."""
    return {
        "key": s.budget.key,
        "scope": str(s.budget.scope),
        "unit": s.unit,
        "used": s.used,
        "limit": s.limit,
        "remaining": max(s.limit - s.used, 0.0),
        "pace_ratio": round(s.pace_ratio, 4),
        "status": s.status.value,
        "step": s.step.value,
        "level": s.level,
        "window_start": iso(s.start),
        "window_end": iso(s.end),
        "resets_at": iso(s.end),
        "reset_confidence": s.reset_confidence.value,
        "reset_confidence_text": reset_tag(s.reset_confidence),
        "source": s.source.value,
        "target_rate_per_hour": s.target_rate,
        "projected_end_use": s.projected_end_use,
        "projected_exhaustion": iso(s.projected_exhaustion),
        "queued_until": iso(s.queued_until),
        "burst_until": iso(s.burst.until) if s.burst is not None else None,
        "usd_used": s.usd_used,
        "held": s.held,  # what live runs' quotes hold against it beyond what they spent
        "holding_runs": s.holding,
        "series": [[iso(at), value] for at, value in s.series],
        "even_line": [[iso(s.start), 0.0], [iso(s.end), s.limit]],
    }


def forge_row(run: ForgeRunRecord, line: Callable[[str], str]) -> Json:
    """A live forge run for the fleet page and ``/api/fleet``: its issue and pull request,
    each with its link (only an ``https``/``http`` one the forge gave), the issue's title
    guarded as any text people wrote."""
    return {
        "forge": run.forge,
        "repo": run.repo,
        "slug": line(str(run.slug)),
        "issue": run.issue,
        "issue_url": web_address(run.issue_url),
        "title": line(run.title),
        "agent": run.agent,
        "branch": line(run.branch),
        "state": run.state,
        "pull": run.pull,
        "pull_url": web_address(run.pull_url),
        "requester": line(run.requester),
        "started_at": run.started_at.isoformat(),
    }


def link_json(report: HealthReport, line: Callable[[str], str]) -> Json:
    """A connector's link to its service (:mod:`connectors.health`): up (connected and
    logged in), since when, its last event and its last error (redacted, guarded)."""
    return {
        "name": report.connector,
        "up": report.up,
        "connected": report.connected,
        "logged_in": report.logged_in,
        "since": iso(report.since),
        "last_event_at": iso(report.last_event_at),
        "last_error": None if report.last_error is None else line(report.last_error),
        "last_error_at": iso(report.last_error_at),
    }
