"""Asks from a CLI's blocking permission hook (the ``hook`` channel): Claude Code's TUI in
tmux asks through its ``PermissionRequest`` hook; Codex's TUI through its ``PreToolUse``
hook (Codex 0.169 posts ``tool_name`` ``Bash`` or ``apply_patch``, ``tool_input.command``
and a ``tool_use_id`` naming the call; it goes on when the hook prints nothing and does
not when it prints ``permissionDecision: deny``, whose reason its model reads).

The hook (a command in the agent's settings, :mod:`fleet.runtimes.claude`) posts what
Claude Code hands it — ``tool_name``, ``tool_input``, ``session_id``, ``prompt_id`` — to
the heartbeat endpoint's ``/ask/<agent>`` with the agent's token, and waits for the answer
in the body of the reply: ``{"hookSpecificOutput": {"hookEventName": "PermissionRequest",
"decision": {"behavior": "allow"|"deny", "message"?}}}`` (measured on 2.1.197: Claude
Code then shows "Allowed by PermissionRequest hook" and runs the tool, or does not).

An ask is keyed by what it asks (a digest of the session, the prompt, the tool and its
input), so the hook posting the same ask again — its ``curl`` retries while Fleetwarden
restarts — finds the request it already is, never a second one. Nothing needs to be told
to the CLI later: the answer travels back in the reply (the channel's deliverer does
nothing).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fleet.approvals.service import Approvals
from fleet.hostile_json import JsonRefused, read_json
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.heartbeats import HeartbeatsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.notices import starter
from fleet.sessions.claude import describe
from fleet.sessions.codex_asks import patch_ask

CHANNEL = "hook"
EVENT = "PermissionRequest"
PRE_TOOL = "PreToolUse"  # Codex's TUI asks before each call (fleet.runtimes.codex_hooks)
PATCH_TOOL = "apply_patch"


class BadAsk(ValueError):
    """A body that is not a permission hook's JSON."""


class HookAsks:
    """Opens the hook's asks as approval requests and waits for their answers."""

    def __init__(
        self,
        agents: AgentsStore,
        heartbeats: HeartbeatsStore,
        runs: RunsStore,
        approvals: Approvals | None,
    ) -> None:
        self._agents = agents
        self._heartbeats = heartbeats
        self._runs = runs
        self._approvals = approvals

    async def start(self) -> None:
        if self._approvals is not None:
            await self._approvals.register(CHANNEL, _told_in_the_reply)

    async def ask(self, agent: str, body: bytes) -> bytes:
        """The hook's answer to the ask in ``body`` from ``agent``: once the operator (or
        a rule, or the deadline) decided. :class:`BadAsk` for a body that is no ask."""
        payload = _payload(body)
        tool = str(payload.get("tool_name") or "tool")
        raw = payload.get("tool_input")
        tool_input: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        approvals = self._approvals
        record = await self._agents.get_agent(agent)
        run = await self._runs.last_run(agent)
        event = str(payload.get("hook_event_name") or EVENT)
        if approvals is None or record is None or run is None or run.ended_at is not None:
            return _decision(False, "Fleetwarden takes no approvals for this agent now", event)
        start = await self._runs.run_start(run.id)
        request = await approvals.open(
            agent=record.name,
            run_id=run.id,
            channel=CHANNEL,
            ask=_describe(_native_id(payload, tool, tool_input), tool, tool_input),
            wait_seconds=record.spec.approval_timeout,
            max_open=record.spec.max_open_approvals,
            starter=starter(start.trigger) if start is not None else None,
            rules=record.spec.allow,
            deny=record.spec.deny,
        )
        if request.state.is_open:  # the watchdog sees it waiting, never stalled
            await self._heartbeats.record_heartbeat(record.name, "waiting")
        done = await self._answer(approvals, request)
        if done.state is ApprovalState.ALLOWED:
            return _decision(True, None, event)
        reason = done.reason or "the operator said no"
        return _decision(False, f"The operator denied this: {reason}", event)

    async def _answer(self, approvals: Approvals, request: ApprovalRequest) -> ApprovalRequest:
        """The request once decided; past its deadline, denied as a timeout here."""
        left = (request.deadline - request.asked_at).total_seconds()
        try:
            return await asyncio.wait_for(approvals.wait(request.id), max(left, 0) + 1)
        except TimeoutError:
            await approvals.expire()
            return await approvals.get(request.id)


async def _told_in_the_reply(request: ApprovalRequest) -> None:
    """The hook's waiting request carries the answer back: nothing more to tell."""


def _payload(body: bytes) -> Mapping[str, Any]:
    try:
        payload = read_json(body)
    except JsonRefused as exc:
        raise BadAsk(f"{exc}") from None
    if not isinstance(payload, dict) or not payload.get("tool_name"):
        raise BadAsk("the body is not a permission hook's JSON (no tool_name)")
    return payload


def _native_id(payload: Mapping[str, Any], tool: str, tool_input: Mapping[str, Any]) -> str:
    if payload.get("tool_use_id"):  # Codex names each call
        return hashlib.sha256(str(payload["tool_use_id"]).encode()).hexdigest()[:32]
    key = [payload.get("session_id"), payload.get("prompt_id"), tool, tool_input]
    text = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _describe(native_id: str, tool: str, tool_input: Mapping[str, Any]) -> Ask:
    if tool == PATCH_TOOL:  # Codex's edit: a patch
        return patch_ask(native_id, str(tool_input.get("command") or ""))
    return describe(native_id, tool, tool_input)


def _decision(allow: bool, message: str | None, event: str = EVENT) -> bytes:
    if event == PRE_TOOL:  # Codex's PreToolUse hook: nothing lets the call go on
        if allow:
            return b""
        deny = {"permissionDecision": "deny", "permissionDecisionReason": message or "denied"}
        return json.dumps({"hookSpecificOutput": {"hookEventName": event, **deny}}).encode()
    decision: dict[str, Any] = {"behavior": "allow" if allow else "deny"}
    if message is not None:
        decision["message"] = message
    output = {"hookSpecificOutput": {"hookEventName": EVENT, "decision": decision}}
    return json.dumps(output).encode()
