"""A :class:`~fleet.supervisor.admission.request.LaunchRequest` as the spawn queue holds it:
written to JSON when the launch starts waiting (:func:`held`), read back when its turn
comes (:func:`request_of`), so it starts as it was asked. An entry written before the
queue held requests has none: its origin reads it (chat: as the command it keeps)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fleet.errors import FleetError
from fleet.ledger import QueuedSpawn
from fleet.model import DEFAULT_ASK_WITHIN, PermissionMode, RunBudget
from fleet.repos.hook.policy import Issue
from fleet.repos.line.review import ReviewCheckout
from fleet.supervisor.admission.request import ORIGINS, LaunchRequest, Origin

_PLAIN = (
    *("by", "runtime", "model", "account", "prompt", "host", "repo", "repo_base"),
    *("fresh", "branch", "co_author", "urgent", "collect", "new"),
)


def held(request: LaunchRequest) -> str:
    """``request`` as the queue keeps it."""
    out: dict[str, Any] = {"agent": request.agent, "origin": request.origin}
    for key in _PLAIN:
        out[key] = getattr(request, key)
    out["workdir"] = None if request.workdir is None else str(request.workdir)
    out["permissions"] = None if request.permissions is None else request.permissions.value
    budget = request.run_budget
    out["run_budget"] = None
    if budget is not None:
        since = None if budget.since is None else budget.since.isoformat()
        out["run_budget"] = {**asdict(budget), "since": since}  # its ask's settings too
    issue = request.issue
    out["issue"] = None if issue is None else {"slug": issue.slug, "number": issue.number}
    out["quote_under"] = request.quote_under
    out["task"] = request.task
    review = request.review_of
    out["review_of"] = None if review is None else asdict(review)
    return json.dumps(out, sort_keys=True)


def request_of(entry: QueuedSpawn) -> LaunchRequest | None:
    """The request ``entry`` holds; ``None`` for an entry written before requests were
    held. Raises :class:`FleetError` when what it holds cannot be read."""
    if entry.launch is None:
        return None
    try:
        data = json.loads(entry.launch)
        return _read(cast(dict[str, Any], data))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FleetError(f"queued launch #{entry.id} could not be read: {exc}") from None


def _origin(value: object) -> Origin:
    """A held request's origin, one of :data:`ORIGINS` (none kept: ``chat``)."""
    if value is None:
        return "chat"
    found = next((origin for origin in ORIGINS if origin == value), None)
    if found is None:
        raise ValueError(f"unknown origin {str(value)[:40]!r}")
    return found


def _read(data: dict[str, Any]) -> LaunchRequest:
    workdir, mode = data.get("workdir"), data.get("permissions")
    budget, issue, review = data.get("run_budget"), data.get("issue"), data.get("review_of")
    return LaunchRequest(
        str(data["agent"]),
        origin=_origin(data.get("origin")),
        by=_text(data.get("by")) or "operator",
        runtime=_text(data.get("runtime")),
        model=_text(data.get("model")),
        account=_text(data.get("account")),
        prompt=_text(data.get("prompt")),
        workdir=None if workdir is None else Path(str(workdir)),
        permissions=None if mode is None else PermissionMode(str(mode)),
        run_budget=None if budget is None else _budget(cast(dict[str, Any], budget)),
        host=_text(data.get("host")),
        repo=_text(data.get("repo")),
        repo_base=_text(data.get("repo_base")),
        fresh=bool(data.get("fresh")),
        branch=_text(data.get("branch")),
        issue=None if issue is None else Issue(str(issue["slug"]), int(issue["number"])),
        co_author=_text(data.get("co_author")),
        urgent=bool(data.get("urgent")),
        collect=bool(data.get("collect", True)),
        new=bool(data.get("new")),
        quote_under=_dollars(data.get("quote_under")),  # absent from entries made before
        task=_task(data.get("task")),
        review_of=None if review is None else _review_of(cast(dict[str, Any], review)),
    )


def _review_of(data: dict[str, Any]) -> ReviewCheckout:
    """A held review launch's checkout (its commit checked again)."""
    return ReviewCheckout(
        str(data["repo"]), int(data["line_id"]), str(data["commit"]), int(data["review_id"])
    )


def _task(value: object) -> int | None:
    """A held request's task id (none kept: ``None``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"a task id is a positive whole number, not {str(value)[:40]!r}")
    return value


def _budget(data: dict[str, Any]) -> RunBudget:
    since = data.get("since")
    tokens, usd = data.get("max_tokens"), data.get("max_usd")
    offer_tokens, offer_usd = data.get("offer_tokens"), data.get("offer_usd")
    return RunBudget(
        max_tokens=None if tokens is None else int(tokens),
        max_usd=None if usd is None else float(usd),
        cutoff=str(data.get("cutoff") or "refuse"),
        since=None if since is None else datetime.fromisoformat(str(since)),
        ask_within=float(data.get("ask_within") or DEFAULT_ASK_WITHIN),
        then="stop" if data.get("then") == "stop" else "freeze",
        offer_tokens=None if offer_tokens is None else int(offer_tokens),
        offer_usd=None if offer_usd is None else float(offer_usd),
    )


def _dollars(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
