"""An argument's completion (``completion/complete``) is decided as a call by the door's ask
(fleet.mcp.asking): by the mode and the rules naming the whole server, else asked in chat,
an ``always`` there teaching no rule (the only one that could name it is the server's)."""

from __future__ import annotations

import asyncio
import json

import pytest

from fleet.approvals.ask_door import AskTerms
from fleet.approvals.service import Approvals
from fleet.ledger.records.approvals import Decision
from fleet.mcp.asking import CHANNEL, completion_ruled
from fleet.mcp.hooks import McpCall
from fleet.model import PermissionMode
from fleet.timing.clock import ManualClock
from tests.unit.fleet.approvals_rig import approvals, told
from tests.unit.fleet.mcp.test_asking import asks, pending, terms

__all__ = ["approvals", "told"]  # fixtures

COMPLETION = McpCall(
    "coder",
    "srv",
    "greet",
    {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "who", "value": "a"}},
    "completion/complete",
)


@pytest.mark.parametrize(
    ("given", "allowed", "why"),
    [
        (terms(PermissionMode.FULL, deny=("mcp__srv",)), False, "rule mcp__srv"),
        (terms(PermissionMode.FULL), True, "full"),
        (terms(rules=("mcp__srv__*",)), True, "rule mcp__srv__*"),
        (terms(PermissionMode.READ_ONLY), False, "read-only"),
        (terms(PermissionMode.READ_ONLY, rules=("mcp__srv",)), True, "rule mcp__srv"),
    ],
    ids=["deny", "full", "allow-server", "read-only", "read-only-allowed"],
)
def test_the_mode_and_the_servers_rules_decide_a_completion(
    given: AskTerms, allowed: bool, why: str
) -> None:
    """A deny rule naming the server refuses in every mode; ``full`` and an allow rule
    naming the whole server relay; ``read-only`` refuses otherwise."""
    verdict = completion_ruled(COMPLETION, given)
    assert verdict is not None and verdict.allowed is allowed and why in verdict.why


@pytest.mark.parametrize("mode", [PermissionMode.ASK, PermissionMode.EDITS])
def test_a_tools_rule_does_not_decide_a_completion(mode: PermissionMode) -> None:
    """In ``ask`` and ``edits`` a rule naming one tool (even one named like the prompt)
    decides nothing: a person is asked."""
    given = terms(mode, rules=("mcp__srv__greet",), deny=("mcp__srv__greet",))
    assert completion_ruled(COMPLETION, given) is None


async def test_a_completion_is_asked_in_chat_and_always_teaches_no_rule(
    approvals: Approvals, clock: ManualClock
) -> None:
    """In ``ask`` the completion is asked on the door's channel, showing its reference and
    argument; ``always`` allows it once and the next completion is asked again."""
    ask = asks(approvals, clock, terms())
    waiting = asyncio.create_task(ask(COMPLETION))
    [request] = await pending(approvals)
    assert (request.channel, request.tool, request.pattern) == (CHANNEL, "mcp__srv", None)
    shown = json.loads(request.subject)["completion/complete"]
    assert shown["ref"] == {"type": "ref/prompt", "name": "greet"}
    await approvals.answer(request.id, by="@ada:x", decision=Decision.ALWAYS, how="reaction")
    assert (await waiting).allowed
    again = asyncio.create_task(ask(COMPLETION))
    [asked] = await pending(approvals)
    await approvals.answer(asked.id, by="@ada:x", decision=Decision.DENY, how="reaction")
    assert not (await again).allowed
