"""Tests for who gave a label or an assignment, as forge work and the poller take it from
the forge's record of an issue's changes: a triager's label on a maintainer's issue is the
triager's on a polled forge; a Gitea delivery read from how the issue now is acts only on
the change its sender made — a writer adding ``bug`` beside someone else's trigger label
starts nothing, unassigning someone else stops nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from fleet.forge.events.changes import confirmed, newest
from fleet.forge.events.poller import Poller
from fleet.forge.events.webhooks import parse
from fleet.forge.model import ChangeKind, EventKind, ForgeApiError, ForgeEvent, IssueChange
from fleet.ledger import Ledger
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import AGENT, BOT, FORGE, LABEL, SLUG, WorkRig, event

MAINTAINER, TRIAGER, WRITER = "alice", "trudy", "wendy"


@pytest.fixture
def confirmed_changes_rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    """Forge work over issue #3 by alice (a writer); trudy may only triage, wendy write."""
    made = WorkRig.make(ledger, clock)
    made.api.allow(TRIAGER, "read")
    made.api.allow(WRITER, "write")
    made.api.add_issue(updated_at=clock.now())
    return made


def ago(rig: WorkRig, minutes: float) -> datetime:
    return rig.clock.now() - timedelta(minutes=minutes)


def gitea(kind: EventKind, actor: str, **fields: Any) -> ForgeEvent:
    """A Gitea label or assignment delivery as :func:`~fleet.forge.events.webhooks.parse` reads
    it: what the issue now carries, to be confirmed."""
    name = "issue_label" if kind in (EventKind.LABELED, EventKind.UNLABELED) else "issue_assign"
    return replace(event(kind, actor=actor, **fields), name=name, confirm=True)


def poller(rig: WorkRig, cursors: dict[Slug, str], watched: Sequence[int] = ()) -> Poller:
    async def get_cursor(forge: str, slug: Slug) -> str | None:
        return cursors.get(slug)

    async def set_cursor(forge: str, slug: Slug, cursor: str) -> None:
        cursors[slug] = cursor

    async def watching() -> Sequence[tuple[Slug, int, bool]]:
        return [(SLUG, n, False) for n in watched]  # issues

    return Poller(
        FORGE,
        rig.entry,
        rig.api,
        [SLUG],
        get_cursor=get_cursor,
        set_cursor=set_cursor,
        clock=rig.clock,
        watched=watching,
    )


async def poll_and_deliver(rig: WorkRig, polling: Poller) -> list[str]:
    """One round of polling, each event new to the ledger delivered; their outcomes."""
    outcomes = []
    for found in await polling.poll_once():
        taken = {kept.delivery for kept in await rig.ledger.forge.deliveries(FORGE, limit=1000)}
        if found.delivery not in taken:
            outcomes.append(await rig.deliver(found))
    return outcomes


async def test_a_triagers_label_on_a_polled_forge_is_refused(
    confirmed_changes_rig: WorkRig,
) -> None:
    """The maintainer's issue labelled by a triager, found by the poller: the label is
    the triager's, who may not start a run — refused, audited, nothing posted. The
    maintainer's own label afterwards starts the run, requested by the maintainer."""
    confirmed_changes_rig.api.add_issue(labels=(LABEL,), updated_at=ago(confirmed_changes_rig, 2))
    confirmed_changes_rig.api.change(3, "labeled", LABEL, TRIAGER, ago(confirmed_changes_rig, 2))
    cursors: dict[Slug, str] = {}
    polling = poller(confirmed_changes_rig, cursors)
    [outcome] = await poll_and_deliver(confirmed_changes_rig, polling)
    assert outcome.startswith(f"ignored: @{TRIAGER} may not start or steer runs"), outcome
    assert confirmed_changes_rig.launcher.starts == [] and confirmed_changes_rig.api.writes() == []
    assert (
        await poll_and_deliver(confirmed_changes_rig, polling) == []
    )  # the same label: the same delivery

    confirmed_changes_rig.clock.advance(60)
    confirmed_changes_rig.api.change(
        3, "unlabeled", LABEL, MAINTAINER, confirmed_changes_rig.clock.now()
    )
    confirmed_changes_rig.api.change(
        3, "labeled", LABEL, MAINTAINER, confirmed_changes_rig.clock.now()
    )
    confirmed_changes_rig.api.add_issue(
        labels=(LABEL,), updated_at=confirmed_changes_rig.clock.now()
    )
    [outcome] = await poll_and_deliver(confirmed_changes_rig, polling)
    assert outcome.startswith(f"started {AGENT} on #3"), outcome
    assert (await confirmed_changes_rig.run()).requester == MAINTAINER


async def test_a_polled_label_nobody_is_recorded_giving_starts_nothing(
    confirmed_changes_rig: WorkRig,
) -> None:
    """A trigger label the forge's record does not account for is no event at all."""
    confirmed_changes_rig.api.add_issue(labels=(LABEL,), updated_at=ago(confirmed_changes_rig, 2))
    assert await poll_and_deliver(confirmed_changes_rig, poller(confirmed_changes_rig, {})) == []
    assert confirmed_changes_rig.launcher.starts == []


async def test_a_gitea_writer_adding_bug_beside_an_old_trigger_label_starts_nothing(
    confirmed_changes_rig: WorkRig,
) -> None:
    """Gitea's delivery for a writer's ``bug`` reads LABELED (a trigger label sits on the
    issue, a triager's): the writer's own change was ``bug``, so nothing starts."""
    confirmed_changes_rig.api.change(3, "labeled", LABEL, TRIAGER, ago(confirmed_changes_rig, 10))
    confirmed_changes_rig.api.change(3, "labeled", "bug", WRITER, ago(confirmed_changes_rig, 0))
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.LABELED, WRITER, label=LABEL))
    assert outcome == f"ignored: the change by @{WRITER} could not be confirmed"
    assert confirmed_changes_rig.launcher.starts == [] and confirmed_changes_rig.api.writes() == []
    [line] = await confirmed_changes_rig.ledger.forge.forge_audit()
    assert f"by @{WRITER} on #3" in line.detail and (line.op, line.allowed) == ("event", False)


async def test_a_gitea_trigger_label_is_its_givers(confirmed_changes_rig: WorkRig) -> None:
    """The triager's own delivery is confirmed as the triager's label and refused; the
    writer's, given with ``bug`` in one act, is confirmed and starts the run."""
    confirmed_changes_rig.api.change(3, "labeled", LABEL, TRIAGER, ago(confirmed_changes_rig, 10))
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.LABELED, TRIAGER, label=LABEL))
    assert outcome.startswith(f"ignored: @{TRIAGER} may not"), outcome
    confirmed_changes_rig.api.change(3, "unlabeled", LABEL, WRITER, ago(confirmed_changes_rig, 1))
    confirmed_changes_rig.api.change(3, "labeled", LABEL, WRITER, ago(confirmed_changes_rig, 0))
    confirmed_changes_rig.api.change(3, "labeled", "bug", WRITER, ago(confirmed_changes_rig, 0))
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.LABELED, WRITER, label=LABEL))
    assert outcome.startswith(f"started {AGENT} on #3"), outcome
    assert (await confirmed_changes_rig.run()).requester == WRITER


async def test_unassigning_someone_else_does_not_stop_a_label_started_run(
    confirmed_changes_rig: WorkRig,
) -> None:
    """A run started by its label: Gitea's delivery for a writer unassigning carol reads
    UNASSIGNED from the bot (the bot is not among the assignees) — not confirmed, the run
    goes on; the poller watching the issue says nothing either. The bot unassigned for
    real stops it."""
    record = await confirmed_changes_rig.started()
    confirmed_changes_rig.api.change(3, "assigned", "carol", WRITER, ago(confirmed_changes_rig, 5))
    confirmed_changes_rig.api.change(
        3, "unassigned", "carol", WRITER, ago(confirmed_changes_rig, 0)
    )
    confirmed_changes_rig.api.add_issue(labels=(LABEL,), updated_at=ago(confirmed_changes_rig, 0))
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.UNASSIGNED, WRITER, assignee=BOT))
    assert outcome == f"ignored: the change by @{WRITER} could not be confirmed"
    confirmed_changes_rig.api.change(3, "labeled", LABEL, "alice", ago(confirmed_changes_rig, 30))
    cursors = {SLUG: ago(confirmed_changes_rig, 10).isoformat()}
    polled = await poller(confirmed_changes_rig, cursors, watched=[3]).poll_once()
    assert EventKind.LABELED in {e.kind for e in polled}  # the issue was read, and
    assert EventKind.UNASSIGNED not in {e.kind for e in polled}  # the bot was never assigned
    assert not any(
        o.startswith("stopped") for o in [await confirmed_changes_rig.deliver(e) for e in polled]
    )
    assert confirmed_changes_rig.launcher.named("stop") == []
    assert (await confirmed_changes_rig.run()).id == record.id

    confirmed_changes_rig.clock.advance(60)
    confirmed_changes_rig.api.change(3, "assigned", BOT, WRITER, confirmed_changes_rig.clock.now())
    confirmed_changes_rig.api.change(
        3, "unassigned", BOT, WRITER, confirmed_changes_rig.clock.now()
    )
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.UNASSIGNED, WRITER, assignee=BOT))
    assert outcome == f"stopped {AGENT}: the issue was unassigned"


async def test_a_gitea_label_taken_away_stops_the_run_of_that_label(
    confirmed_changes_rig: WorkRig,
) -> None:
    """Gitea's delivery for labels cleared by a writer reads UNLABELED with no label: it
    is confirmed as the trigger label taken away by the writer, and the run stops."""
    await confirmed_changes_rig.started()
    confirmed_changes_rig.api.change(3, "unlabeled", "bug", WRITER, ago(confirmed_changes_rig, 0))
    confirmed_changes_rig.api.change(3, "unlabeled", LABEL, WRITER, ago(confirmed_changes_rig, 0))
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.UNLABELED, WRITER))
    assert outcome == f"stopped {AGENT}: the issue was unlabelled"


async def test_a_change_older_than_the_stale_limit_confirms_nothing(
    confirmed_changes_rig: WorkRig,
) -> None:
    """The sender's last trigger label, given longer ago than the forge's
    max_event_age_seconds, is not what a delivery now is about."""
    old = confirmed_changes_rig.entry.max_event_age_seconds / 60 + 1
    confirmed_changes_rig.api.change(3, "labeled", LABEL, WRITER, ago(confirmed_changes_rig, old))
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.LABELED, WRITER, label=LABEL))
    assert outcome == f"ignored: the change by @{WRITER} could not be confirmed"


async def test_a_forge_that_cannot_say_fails_the_delivery(confirmed_changes_rig: WorkRig) -> None:
    """The record of changes refused: the delivery fails, naming the forge's answer."""
    confirmed_changes_rig.api.failures["issue_changes"] = ForgeApiError(
        "Gitea refused GET timeline: 502", 502
    )
    outcome = await confirmed_changes_rig.deliver(gitea(EventKind.LABELED, WRITER, label=LABEL))
    assert outcome == "failed: Gitea refused GET timeline: 502"
    assert confirmed_changes_rig.launcher.starts == []


def test_confirmed_keeps_to_the_senders_newest_act(confirmed_changes_rig: WorkRig) -> None:
    """Of the sender's changes of the delivery's sort, only the newest act counts (a few
    seconds wide): an older trigger label of theirs, an assignment for a label delivery,
    and another person's change all count for nothing."""
    now = confirmed_changes_rig.clock.now()

    def change(kind: ChangeKind, name: str, actor: str, seconds: float) -> IssueChange:
        return IssueChange(kind, name, actor, now - timedelta(seconds=seconds))

    delivery = gitea(EventKind.LABELED, WRITER, label=LABEL)
    since = now - timedelta(hours=1)
    history = [
        change("labeled", LABEL, WRITER, 600),
        change("assigned", BOT, WRITER, 2),
        change("labeled", "fleetwarden:other", TRIAGER, 1),
        change("labeled", "bug", WRITER.upper(), 0),
    ]
    assert confirmed(delivery, history, confirmed_changes_rig.entry, not_before=since) is None
    history.append(change("unlabeled", LABEL, WRITER, 0))
    found = confirmed(delivery, history, confirmed_changes_rig.entry, not_before=since)
    assert found is not None and not found.confirm
    assert (found.kind, found.label, found.assignee) == (EventKind.UNLABELED, LABEL, None)
    assert newest(history, ("assigned", "unassigned"), BOT.upper()) == history[1]


def github_labeled(rig: WorkRig, actor: str, delivery: str) -> ForgeEvent:
    """A GitHub ``issues.labeled`` delivery naming ``actor``, read by the real parser."""
    payload = {
        "action": "labeled",
        "issue": {"number": 3, "updated_at": rig.clock.now().isoformat()},
        "label": {"name": LABEL},
        "repository": {"full_name": str(SLUG)},
        "sender": {"login": actor},
    }
    headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery}
    return parse(FORGE, "github", headers, json.dumps(payload).encode())


async def test_a_github_label_is_confirmed_against_the_issues_events(
    confirmed_changes_rig: WorkRig,
) -> None:
    """A signed delivery says the writer labelled #3; the issue's events say nobody did,
    then that a triager did: nothing starts. Once the events record the writer's label, the
    same delivery (a new one) starts the run, requested by the writer."""
    found = github_labeled(confirmed_changes_rig, WRITER, "gh-1")
    assert found.confirm
    outcome = await confirmed_changes_rig.deliver(found)
    assert outcome == f"ignored: the change by @{WRITER} could not be confirmed"
    assert confirmed_changes_rig.launcher.starts == [] and confirmed_changes_rig.api.writes() == []
    confirmed_changes_rig.api.change(3, "labeled", LABEL, TRIAGER, ago(confirmed_changes_rig, 0))
    outcome = await confirmed_changes_rig.deliver(
        github_labeled(confirmed_changes_rig, WRITER, "gh-2")
    )
    assert outcome == f"ignored: the change by @{WRITER} could not be confirmed"
    confirmed_changes_rig.api.change(3, "labeled", LABEL, WRITER, ago(confirmed_changes_rig, 0))
    outcome = await confirmed_changes_rig.deliver(
        github_labeled(confirmed_changes_rig, WRITER, "gh-3")
    )
    assert outcome.startswith(f"started {AGENT} on #3"), outcome
    assert (await confirmed_changes_rig.run()).requester == WRITER
