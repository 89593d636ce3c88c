"""Tests for the ledger's forge tables (migration 22), on SQLite and PostgreSQL: a delivery
is taken once, an issue has one live forge run, fields update, the audit keeps every line
in order, and the poller's cursor is kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState, NewForgeRun, Slug

SLUG = Slug("acme", "app")


async def test_a_delivery_is_taken_once(ledger: Ledger) -> None:
    """The same delivery id of the same forge is had once; another forge's is its own."""
    assert await ledger.forge.take_delivery("gh", "d-1", "issues")
    assert not await ledger.forge.take_delivery("gh", "d-1", "issues")
    assert await ledger.forge.take_delivery("tea", "d-1", "issues")
    await ledger.forge.set_delivery_outcome("gh", "d-1", "started coder on #3")
    [newest, *_] = await ledger.forge.deliveries("gh")
    assert (newest.delivery, newest.outcome) == ("d-1", "started coder on #3")


def _new(issue: int = 3, given: str = "") -> NewForgeRun:
    return NewForgeRun(
        forge="gh",
        repo="app",
        slug=SLUG,
        issue=issue,
        title="Fix it",
        agent="coder",
        branch="fw/coder/issue-3",
        requester="octocat",
        issue_url="https://github.com/acme/app/issues/3",
        given=given,
    )


async def _add(ledger: Ledger, issue: int = 3) -> int | None:
    added = await ledger.forge.add_forge_run(_new(issue))
    return None if added is None else added.id


async def test_a_forge_run_is_kept_with_its_start_in_one_write(ledger: Ledger) -> None:
    """Adding a run answers the run as the ledger keeps it, and keeps the words it was
    given with in its audit, with no read of it after."""
    added = await ledger.forge.add_forge_run(_new(given="#3 given to coder by @octocat"))
    assert added is not None and added == await ledger.forge.forge_run(added.id)
    assert (added.state, added.title, added.comment_id) == ("queued", "Fix it", None)
    [start] = await ledger.forge.forge_audit(added.id)
    assert (start.op, start.allowed, start.detail) == (
        "start",
        True,
        "#3 given to coder by @octocat",
    )


async def test_an_issue_has_one_live_forge_run(ledger: Ledger) -> None:
    """A second run of a live issue is refused; once it ended, a new one may start."""
    first = await _add(ledger)
    assert first is not None
    assert await _add(ledger) is None
    await ledger.forge.update_forge_run(first, state=ForgeRunState.ENDED, ended_at=None)
    assert await _add(ledger) is None  # ended_at unset: still live
    await ledger.forge.update_forge_run(first, ended_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert await _add(ledger) is not None


async def test_fields_update_and_are_found_by_pull_and_run(ledger: Ledger) -> None:
    """The pull request's number finds the run as its issue does; so does the agent."""
    run = await _add(ledger)
    assert run is not None
    assert await ledger.forge.agent_forge_run("coder") is None  # queued: not worked on yet
    await ledger.forge.update_forge_run(
        run, state=ForgeRunState.WORKING, pull=18, pull_url="u", run_id=7, comment_id=99
    )
    by_pull = await ledger.forge.live_forge_run("gh", SLUG, 18)
    by_issue = await ledger.forge.live_forge_run("gh", SLUG, 3)
    assert by_pull == by_issue and by_pull is not None
    # Where the forge numbers them apart (GitLab), the event says which one it means.
    assert await ledger.forge.live_forge_run("gh", SLUG, 18, pull=True) == by_pull
    assert await ledger.forge.live_forge_run("gh", SLUG, 18, pull=False) is None
    assert await ledger.forge.live_forge_run("gh", SLUG, 3, pull=False) == by_pull
    assert await ledger.forge.live_forge_run("gh", SLUG, 3, pull=True) is None
    assert (by_pull.pull, by_pull.comment_id, by_pull.state) == (18, 99, "working")
    assert await ledger.forge.agent_forge_run("coder") == by_pull
    assert [r.id for r in await ledger.forge.forge_runs()] == [run]
    with pytest.raises(ValueError, match="not a field"):
        await ledger.forge.update_forge_run(run, slug="x/y")


async def test_the_audit_keeps_every_line_in_order(ledger: Ledger) -> None:
    """Allowed and refused operations are kept, oldest first, cut to their cap."""
    await ledger.forge.audit_forge(1, "coder", "read", True, "read PR #18 description")
    await ledger.forge.audit_forge(
        1, "coder", "comment", False, "refused: comment on #3, " + "x" * 900
    )
    await ledger.forge.audit_forge(2, "other", "read", True, "read issue #1")
    lines = await ledger.forge.forge_audit(1)
    assert [(a.op, a.allowed) for a in lines] == [("read", True), ("comment", False)]
    assert len(lines[1].detail) == 500
    assert len(await ledger.forge.forge_audit()) == 3


async def test_the_poller_cursor_is_kept(ledger: Ledger) -> None:
    assert await ledger.forge.forge_cursor("gh", SLUG) is None
    await ledger.forge.set_forge_cursor("gh", SLUG, "2026-01-01T00:00:00Z")
    await ledger.forge.set_forge_cursor("gh", SLUG, "2026-01-02T00:00:00Z")
    assert await ledger.forge.forge_cursor("gh", SLUG) == "2026-01-02T00:00:00Z"


async def test_a_delivery_is_kept_until_its_outcome_is_written(ledger: Ledger) -> None:
    """Taken with its event kept and no outcome: listed as unsettled (oldest first, within
    the age asked); its outcome written, it is settled and its event no longer kept."""
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    assert await ledger.forge.take_delivery("gh", "d-1", "issues", '{"event": 1}')
    assert await ledger.forge.take_delivery("gh", "d-2", "issues")  # nothing kept: not resumable
    assert await ledger.forge.take_delivery("tea", "d-3", "issues", '{"event": 3}')
    assert await ledger.forge.unsettled_deliveries(long_ago) == [
        ("gh", "d-1", '{"event": 1}'),
        ("tea", "d-3", '{"event": 3}'),
    ]
    await ledger.forge.set_delivery_outcome("gh", "d-1", "started coder on #3")
    assert await ledger.forge.unsettled_deliveries(long_ago) == [("tea", "d-3", '{"event": 3}')]
    assert await ledger.forge.unsettled_deliveries(datetime(2999, 1, 1, tzinfo=UTC)) == []
