"""An agent's spec as the ledger keeps it beyond the ``agents`` row's own columns: the
fields written to ``agents.spec_extra_json`` (:func:`spec_extra_json`) and read back onto
the columns' spec (:func:`spec_with_extra`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from fleet.ledger.records.epoch import from_epoch, to_epoch
from fleet.model import (
    DEFAULT_ASK_WITHIN,
    DEFAULT_MESSAGES_PER_HOUR,
    AgentSpec,
    Fallback,
    McpGrant,
    PermissionMode,
    RestartMode,
    RestartPolicy,
    RunBudget,
)
from fleet.names import AgentName


def spec_extra_json(spec: AgentSpec) -> str:
    """The spec fields kept in ``agents.spec_extra_json``."""
    extra: dict[str, Any] = {
        "role": spec.role,
        "autostart": spec.autostart,
        "restart": {
            "mode": spec.restart.mode.value,
            "max_restarts": spec.restart.max_restarts,
            "backoff_initial": spec.restart.backoff_initial,
            "backoff_max": spec.restart.backoff_max,
        },
        "heartbeat_timeout": spec.heartbeat_timeout,
        "timeout": spec.timeout,
        "argv": list(spec.argv),
        "account": spec.account,
        "fallback": None if spec.fallback is None else asdict(spec.fallback),
        "sandbox": spec.sandbox,
        "egress": spec.egress,
        "egress_allow": list(spec.egress_allow),
        "permissions": spec.permissions.value,
        "allow": list(spec.allow),
        "deny": list(spec.deny),
        "approval_timeout": spec.approval_timeout,
        "max_open_approvals": spec.max_open_approvals,
        "run_budget": _run_budget_extra(spec.run_budget),
        "quote_under": spec.quote_under,
        "repo": spec.repo,
        "repo_base": spec.repo_base,
        "git_name": spec.git_name,
        "git_email": spec.git_email,
        "purpose": spec.purpose,
        "talks_to": list(spec.talks_to),
        "wake": spec.wake,
        "messages_per_hour": spec.messages_per_hour,
        "workdir_read_only": spec.workdir_read_only,
        "mcp": [_grant_extra(grant) for grant in spec.mcp],
        "skills": [str(path) for path in spec.skills],
    }
    return json.dumps(extra, sort_keys=True)


def _grant_extra(grant: McpGrant) -> dict[str, object]:
    tools = None if grant.tools is None else sorted(grant.tools)
    return {"server": grant.server, "tools": tools}


def _grants(raw: object) -> tuple[McpGrant, ...]:
    """The MCP grants kept with a spec (none in rows made before agents had them)."""
    grants = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("server"), str):
            continue
        tools = item.get("tools")
        allowed = frozenset(str(t) for t in tools) if isinstance(tools, list) else None
        grants.append(McpGrant(item["server"], allowed))
    return tuple(grants)


def _skills(raw: object) -> tuple[Path, ...]:
    """The skill directories kept with a spec: absolute paths only, junk dropped."""
    items = raw if isinstance(raw, list) else ()
    return tuple(Path(p) for p in items if isinstance(p, str) and p.startswith("/"))


def _fallback(raw: object) -> Fallback | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("runtime"), str):
        return None
    account, model = raw.get("account"), raw.get("model")
    return Fallback(
        raw["runtime"],
        account if isinstance(account, str) else None,
        model if isinstance(model, str) else None,
    )


def _restart_policy(raw: object) -> RestartPolicy:
    if not isinstance(raw, dict):
        return RestartPolicy()
    default = RestartPolicy()
    return RestartPolicy(
        mode=RestartMode(raw.get("mode", default.mode.value)),
        max_restarts=int(raw.get("max_restarts", default.max_restarts)),
        backoff_initial=float(raw.get("backoff_initial", default.backoff_initial)),
        backoff_max=float(raw.get("backoff_max", default.backoff_max)),
    )


def _permission_mode(raw: object, sandbox: str) -> PermissionMode:
    if raw is None:  # stored before modes were: the default for its sandbox
        return PermissionMode.ASK if sandbox == "none" else PermissionMode.EDITS
    try:
        return PermissionMode(str(raw))
    except ValueError:
        return PermissionMode.ASK  # an unknown word from a newer version: the safest mode


def _run_budget_extra(budget: RunBudget | None) -> dict[str, object] | None:
    if budget is None:
        return None
    since = None if budget.since is None else to_epoch(budget.since)
    return {**asdict(budget), "since": since}


def _run_budget(raw: object) -> RunBudget | None:
    if not isinstance(raw, dict):
        return None
    tokens, usd, cutoff = raw.get("max_tokens"), raw.get("max_usd"), raw.get("cutoff")
    since, within = raw.get("since"), raw.get("ask_within")
    offer_tokens, offer_usd = raw.get("offer_tokens"), raw.get("offer_usd")
    raised_tokens, raised_usd = raw.get("raised_tokens"), raw.get("raised_usd")
    return RunBudget(
        int(tokens) if isinstance(tokens, int) else None,
        float(usd) if isinstance(usd, int | float) else None,
        cutoff if cutoff in ("refuse", "freeze", "stop", "ask") else "refuse",
        from_epoch(since) if isinstance(since, int | float) else None,
        float(within) if isinstance(within, int | float) and within > 0 else DEFAULT_ASK_WITHIN,
        "stop" if raw.get("then") == "stop" else "freeze",
        int(offer_tokens) if isinstance(offer_tokens, int) else None,
        float(offer_usd) if isinstance(offer_usd, int | float) else None,
        int(raised_tokens) if isinstance(raised_tokens, int) else 0,
        float(raised_usd) if isinstance(raised_usd, int | float) else 0.0,
    )


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _per_hour(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_MESSAGES_PER_HOUR


def spec_with_extra(columns: AgentSpec, extra: Mapping[str, Any]) -> AgentSpec:
    """``columns`` (the spec as the row's own columns have it) with every field kept in
    ``agents.spec_extra_json``, read leniently: a field absent from rows made before it
    was, or junk, takes its default."""
    argv = extra.get("argv")
    role = extra.get("role")
    account = extra.get("account")
    return replace(
        columns,
        role=role if isinstance(role, str) else None,
        autostart=bool(extra.get("autostart", False)),
        restart=_restart_policy(extra.get("restart")),
        heartbeat_timeout=_optional_float(extra.get("heartbeat_timeout")),
        timeout=_optional_float(extra.get("timeout")),
        argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        account=account if isinstance(account, str) else None,
        fallback=_fallback(extra.get("fallback")),
        sandbox=str(extra.get("sandbox", "bwrap")),
        egress=str(extra.get("egress", "open")),
        egress_allow=tuple(str(h) for h in extra.get("egress_allow") or ()),
        permissions=_permission_mode(extra.get("permissions"), str(extra.get("sandbox", "bwrap"))),
        allow=tuple(str(p) for p in extra.get("allow") or ()),
        deny=tuple(str(p) for p in extra.get("deny") or ()),
        approval_timeout=_optional_float(extra.get("approval_timeout")) or 1800.0,
        max_open_approvals=int(extra.get("max_open_approvals") or 5),
        run_budget=_run_budget(extra.get("run_budget")),
        quote_under=_optional_float(extra.get("quote_under")),
        repo=_optional_str(extra.get("repo")),  # absent from rows made before
        repo_base=_optional_str(extra.get("repo_base")),
        git_name=_optional_str(extra.get("git_name")),
        git_email=_optional_str(extra.get("git_email")),
        # Its peers (absent from rows made before agents had them: none).
        purpose=_optional_str(extra.get("purpose")),
        talks_to=tuple(AgentName(str(n)) for n in extra.get("talks_to") or ()),
        wake="start" if extra.get("wake") == "start" else "wait",
        messages_per_hour=_per_hour(extra.get("messages_per_hour")),
        workdir_read_only=extra.get("workdir_read_only") is True,
        mcp=_grants(extra.get("mcp")),
        skills=_skills(extra.get("skills")),
    )
