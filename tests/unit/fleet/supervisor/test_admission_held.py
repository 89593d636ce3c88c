"""Tests for fleet.supervisor.admission.held: a launch request as the spawn queue keeps it,
read back as it was asked; an entry that holds none reads as none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.errors import FleetError
from fleet.ledger import Ledger, SpawnAsk
from fleet.model import PermissionMode, RunBudget
from fleet.repos.hook.policy import Issue
from fleet.repos.line.review import ReviewCheckout
from fleet.supervisor.admission.held import held, request_of
from fleet.supervisor.admission.request import LaunchRequest


async def test_a_held_request_reads_back_as_it_was_asked(ledger: Ledger) -> None:
    """Every field survives the ledger: overrides, its line's asks, its cap (with how it
    asks at it), who asked."""
    since = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    request = LaunchRequest(
        "coder",
        origin="forge",
        by="@ann on gh",
        runtime="claude",
        prompt="Write the notes",
        workdir=Path("/srv/work"),
        permissions=PermissionMode.EDITS,
        run_budget=RunBudget(
            200_000, 1.5, "ask", since, ask_within=300.0, then="stop", offer_usd=0.5
        ),
        repo="app",
        branch="fw/coder/issue-3",
        issue=Issue("acme/app", 3),
        co_author="Ann <ann@example.com>",
        urgent=True,
        collect=False,
        review_of=ReviewCheckout("app", 4, "a1b2c3d4e5f6", 9),
    )
    ask = SpawnAsk("coder", "", "@ann on gh", "", "", "cap", origin="forge", launch=held(request),
                   ref="7")  # fmt: skip
    entry = await ledger.spawn_queue.enqueue_spawn(ask, host="h")
    assert (entry.origin, entry.ref) == ("forge", "7")
    assert request_of(entry) == request


async def test_an_entry_from_before_holds_no_request(ledger: Ledger) -> None:
    """An entry with no request (as written before migration 25) reads as none, for its
    origin to read; one whose request cannot be read says so."""
    chat = await ledger.spawn_queue.enqueue_spawn(
        SpawnAsk("b", "!spawn b", "@op:x", "matrix", "!room", "cap"), host="h"
    )
    assert request_of(chat) is None and chat.origin == "chat"
    broken = await ledger.spawn_queue.enqueue_spawn(
        SpawnAsk("c", "", "autostart", "", "", "cap", origin="autostart", launch="[1]"), host="h"
    )
    with pytest.raises(FleetError, match="could not be read"):
        request_of(broken)
    strange = await ledger.spawn_queue.enqueue_spawn(
        SpawnAsk("d", "", "autostart", "", "", "cap", origin="autostart",
                 launch='{"agent": "d", "origin": "queue"}'),
        host="h",
    )  # fmt: skip
    with pytest.raises(FleetError, match="unknown origin 'queue'"):
        request_of(strange)
