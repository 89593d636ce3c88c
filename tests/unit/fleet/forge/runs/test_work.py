"""Tests for forge work: what each forge event does to forge runs, over a real ledger, an
in-memory forge and a fake launcher — a trigger by an allowed person starts one run, a
comment or a "request changes" review on its pull request continues the session, the
pull request closed ends it, unlabelling stops it, and everything else is ignored,
audited and posts nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.events.kept import event_of, kept
from fleet.forge.facts import NoRunNews, PullNews
from fleet.forge.launcher import LaunchRefused
from fleet.forge.model import EventKind, ForgeApiError
from fleet.forge.runs.decide import mentions
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState, Slug
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import (
    AGENT,
    BOT,
    BRANCH,
    FORGE,
    LABEL,
    SLUG,
    WorkRig,
    event,
)


async def _with_pull(rig: WorkRig, pull: int = 18) -> int:
    """Start a run on #3 and give it pull request ``pull`` as ``done`` left it; its key."""
    record = await rig.started()
    await rig.ledger.forge.update_forge_run(
        record.id,
        pull=pull,
        pull_url=f"https://github.com/acme/app/pull/{pull}",
        state=ForgeRunState.WAITING,
        done_signal="agent",
        done_status="ok",
    )
    rig.launcher.running.discard(AGENT)
    return record.id


async def test_a_label_by_a_writer_starts_one_run_with_one_status_comment(rig: WorkRig) -> None:
    """Labelled fleetwarden:coder by a writer: coder starts on fw/coder/issue-3 with the
    issue's words, and one status comment is posted on the issue."""
    outcome = await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "started coder on #3 (run 100)"
    [start] = rig.launcher.starts
    assert (start["agent"], start["repo"], start["branch"]) == (AGENT, "app", BRANCH)
    assert "Fix the parser" in start["prompt"]
    assert "The parser drops the last line of every file." in start["prompt"]
    assert "@alice" in start["by"]
    [status] = rig.api.comments_on(3)
    record = await rig.run()
    assert record.comment_id == status.comment.id
    assert (record.state, record.run_id, record.line_id) == ("working", 100, 7)
    assert (record.requester, record.branch, record.title) == ("alice", BRANCH, "Fix the parser")
    assert rig.api.named("comment") and len(rig.api.named("comment")) == 1


async def test_the_status_comment_is_left_out_of_the_prompt(rig: WorkRig) -> None:
    """People's comments reach the prompt, marked as theirs; the status comment does not,
    even when the forge names its author otherwise (an App posts as `LOGIN[bot]`)."""
    rig.api.poster = f"{BOT}[bot]"
    rig.api.add_comment(3, "bob", "Also the first line, please.")
    record = await rig.started()
    [start] = rig.launcher.starts
    assert "Also the first line, please." in start["prompt"] and "@bob" in start["prompt"]
    assert rig.status(record).history[0] not in start["prompt"]


async def test_a_second_label_event_starts_no_second_run(rig: WorkRig) -> None:
    """The issue already has a run: another trigger is ignored, nothing more is posted."""
    await rig.started()
    outcome = await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "ignored: #3 already has a run of coder"
    assert len(rig.launcher.starts) == 1
    assert len(rig.api.comments_on(3)) == 1
    assert len(await rig.ledger.forge.forge_runs()) == 1


async def test_a_label_by_someone_without_write_access_is_ignored_and_audited(
    rig: WorkRig,
) -> None:
    """A reader's label: no run, nothing posted on the forge, one audit line saying why."""
    rig.api.allow("mallory", "read")
    outcome = await rig.deliver(event(EventKind.LABELED, actor="mallory", label=LABEL))
    assert outcome.startswith("ignored: @mallory may not start or steer runs here")
    assert "write access to acme/app" in outcome
    assert rig.launcher.starts == [] and rig.api.writes() == []
    assert await rig.ledger.forge.forge_runs() == []
    [line] = await rig.ledger.forge.forge_audit()
    assert (line.op, line.allowed, line.forge_run) == ("event", False, None)
    assert "@mallory" in line.detail and "#3" in line.detail


async def test_a_stranger_and_an_unanswering_forge_are_both_refused(rig: WorkRig) -> None:
    """No permission at all is refused; a forge that cannot be asked refuses too."""
    outcome = await rig.deliver(event(EventKind.LABELED, actor="eve", label=LABEL))
    assert outcome.startswith("ignored: @eve may not")
    rig.api.failures["permission"] = ForgeApiError("GitHub refused GET: 502 Bad Gateway", 502)
    outcome = await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "ignored: @alice could not be checked (502): refused"
    assert rig.launcher.starts == [] and rig.api.writes() == []


async def test_the_bots_own_events_are_ignored(rig: WorkRig) -> None:
    """What the bot itself did starts nothing, and nobody is asked about it."""
    outcome = await rig.deliver(event(EventKind.LABELED, actor=BOT.upper(), label=LABEL))
    assert outcome == "ignored: the bot's own doing"
    outcome = await rig.deliver(event(EventKind.COMMENT, actor=BOT, body=f"@{BOT} go"))
    assert outcome == "ignored: the bot's own doing"
    assert rig.api.calls == [] and rig.launcher.starts == []


async def test_a_label_of_no_agent_or_on_a_pull_request_starts_nothing(rig: WorkRig) -> None:
    """Only `fleetwarden:AGENT` on an issue is a trigger; a bare prefix or a PR is not."""
    assert await rig.deliver(event(EventKind.LABELED, label="bug")) == "ignored: no trigger"
    bare = event(EventKind.LABELED, label="fleetwarden:")
    assert await rig.deliver(bare) == "ignored: no trigger"
    on_pull = event(EventKind.LABELED, 5, label=LABEL, is_pull=True)
    assert await rig.deliver(on_pull) == "ignored: no trigger"
    assert rig.launcher.starts == [] and rig.api.calls == []


async def test_an_event_of_a_repository_outside_the_config_is_ignored(rig: WorkRig) -> None:
    """An event from acme/other is answered at once and touches nothing."""
    ev = event(EventKind.LABELED, label=LABEL, repo=Slug("acme", "other"))
    outcome = await rig.deliver(ev)
    assert outcome == "ignored: acme/other is no repository of the config on hub"
    assert rig.api.calls == [] and rig.launcher.calls == []


async def test_assignment_to_the_bot_starts_the_forges_agent(rig: WorkRig) -> None:
    """Assigned to the bot's login: the forge's `agent` starts; assigned to bob: nothing."""
    other = event(EventKind.ASSIGNED, assignee="bob")
    assert await rig.deliver(other) == "ignored: no trigger"
    outcome = await rig.deliver(event(EventKind.ASSIGNED, assignee=BOT))
    assert outcome.startswith("started coder on #3")
    [start] = rig.launcher.starts
    assert start["branch"] == BRANCH


async def test_a_mention_in_a_comment_starts_the_forges_agent(rig: WorkRig) -> None:
    """A writer's comment `@fleet-bot …` on an issue without a run starts one."""
    ev = event(EventKind.COMMENT, body=f"@{BOT} please take this one")
    assert (await rig.deliver(ev)).startswith("started coder on #3")
    assert len(rig.launcher.starts) == 1 and len(rig.api.comments_on(3)) == 1


async def test_a_comment_without_a_mention_starts_nothing(rig: WorkRig) -> None:
    """A plain comment, or a mention of `@fleet-bot2`, is no trigger."""
    for body in ("looks hard", f"@{BOT}2 take it", f"mail me@{BOT}.example.org"):
        outcome = await rig.deliver(event(EventKind.COMMENT, body=body))
        assert outcome == "ignored: no run on it, and no mention of the bot"
    assert rig.launcher.starts == [] and rig.api.calls == []


async def test_an_issue_opened_with_a_mention_starts_a_run(rig: WorkRig) -> None:
    """An issue opened by a writer whose body mentions the bot becomes a run."""
    ev = event(EventKind.OPENED, body=f"Hey @{BOT}, the parser again.")
    assert (await rig.deliver(ev)).startswith("started coder")


async def test_a_closed_issue_starts_nothing(rig: WorkRig) -> None:
    """The forge says #3 is closed (the event came late): no run, nothing posted."""
    rig.api.add_issue(state="closed")
    assert await rig.deliver(event(EventKind.LABELED, label=LABEL)) == "ignored: #3 is closed"
    assert rig.launcher.starts == [] and rig.api.writes() == []


async def test_an_agent_of_another_repository_starts_nothing_saying_why(rig: WorkRig) -> None:
    """An agent whose roster entry names another repository: no run; the issue is told
    that it does not work on this one (never which it does) and that no agent does yet."""
    rig.launcher.repos[AGENT] = "site"
    outcome = await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "answered: coder works on repository site, not on app"
    assert rig.launcher.starts == []
    [said] = rig.api.texts_on(3)
    assert "**coder** does not work on this repository." in said and "site" not in said
    assert "No agent works on" in said and "`repo: app`" in said
    assert said.rstrip().endswith("</details>")


async def test_a_label_and_an_assignment_at_once_start_one_run(rig: WorkRig) -> None:
    """An issue opened labelled and assigned to the bot sends both events together: they
    are decided one after the other, and one run starts."""
    both = [event(EventKind.LABELED, label=LABEL), event(EventKind.ASSIGNED, assignee=BOT)]
    for ev in both:
        assert await rig.ledger.forge.take_delivery(ev.forge, ev.delivery, ev.name)
        assert await rig.work.receive(ev) == "accepted"
    await rig.work.settle()
    assert len(rig.launcher.starts) == 1 and len(rig.api.comments_on(3)) == 1
    outcomes = sorted(d.outcome for d in await rig.ledger.forge.deliveries(FORGE))
    assert outcomes[0] == "ignored: #3 already has a run of coder"
    assert outcomes[1].startswith("started coder on #3")


async def test_a_launch_refused_keeps_the_run_queued_saying_why(rig: WorkRig) -> None:
    """A budget holding the launch: the run is queued with the reason on its record."""
    rig.launcher.refuse[AGENT] = "the daily budget of coder is spent"
    outcome = await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "queued: the daily budget of coder is spent"
    record = await rig.run()
    assert (record.state, record.summary) == ("queued", "the daily budget of coder is spent")
    assert len(rig.api.comments_on(3)) == 1


async def test_a_launch_refused_for_the_operators_reasons_says_only_its_kind_on_the_forge(
    rig: WorkRig, caplog: pytest.LogCaptureFixture
) -> None:
    """A launch refused with the operator's detail (the upstream's address, a variable):
    the issue's status comment says only the public words; the log and the audit keep the
    detail, which no post on the forge shows."""
    detail = "not started: cannot reach the upstream of app at https://git.internal/app.git"
    rig.launcher.refuse[AGENT] = LaunchRefused("not started: the operator has the details",
                                               detail)  # fmt: skip
    outcome = await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "queued: not started: the operator has the details"
    record = await rig.run()
    assert record.summary == "not started: the operator has the details"
    shown = rig.status(record).history[-1]
    assert "the operator has the details" in shown and "git.internal" not in shown
    assert all("git.internal" not in text for text in rig.api.texts_on(3))
    [kept] = [a for a in await rig.ledger.forge.forge_audit(record.id) if not a.allowed]
    assert kept.op == "start" and detail in kept.detail
    assert detail in caplog.text


async def test_a_comment_on_the_pull_request_by_a_writer_continues_the_session(
    rig: WorkRig,
) -> None:
    """A writer's comment on the run's PR: follow_up with their words, done cleared."""
    key = await _with_pull(rig)
    rig.api.allow("bob")
    ev = event(EventKind.COMMENT, 18, actor="bob", is_pull=True, body="Rename it to parse_all.")
    outcome = await rig.deliver(ev)
    assert outcome == "continued coder's session (comment by @bob)"
    [call] = rig.launcher.named("follow_up")
    assert call[1] == AGENT and "Rename it to parse_all." in call[2] and "@bob" in call[2]
    record = await rig.record(key)
    assert (record.state, record.done_signal, record.done_status) == ("working", None, None)
    assert record.run_id == 101
    assert any(a.op == "continue" for a in await rig.ledger.forge.forge_audit(key))


async def test_a_comment_on_the_pull_request_by_a_reader_is_ignored(rig: WorkRig) -> None:
    """Comments from people who may not steer the run do not continue it."""
    key = await _with_pull(rig)
    rig.api.allow("mallory", "read")
    ev = event(EventKind.COMMENT, 18, actor="mallory", is_pull=True, body="rm -rf it all")
    assert (await rig.deliver(ev)).startswith("ignored: @mallory may not")
    assert rig.launcher.named("follow_up") == []
    assert (await rig.record(key)).state == "waiting"
    assert any(
        not a.allowed and "@mallory" in a.detail for a in await rig.ledger.forge.forge_audit()
    )


async def test_a_comment_on_the_issue_without_a_mention_is_ignored(rig: WorkRig) -> None:
    """Talk on the issue is not for the agent unless it mentions the bot."""
    await _with_pull(rig)
    outcome = await rig.deliver(event(EventKind.COMMENT, body="nice progress"))
    assert outcome == "ignored: a comment on the issue without a mention of the bot"
    assert rig.launcher.named("follow_up") == []
    outcome = await rig.deliver(event(EventKind.COMMENT, body=f"@{BOT} also the docs"))
    assert outcome.startswith("continued coder's session")


async def test_a_changes_requested_review_continues_and_an_approval_does_not(
    rig: WorkRig,
) -> None:
    """ "Request changes" continues the session; "approved" is nothing to continue."""
    key = await _with_pull(rig)
    approved = event(EventKind.REVIEW, 18, is_pull=True, review_state="approved", body="LGTM")
    assert await rig.deliver(approved) == "ignored: approved, nothing to continue"
    assert rig.launcher.named("follow_up") == []
    empty = event(EventKind.REVIEW, 18, is_pull=True, review_state="commented")
    assert await rig.deliver(empty) == "ignored: a review without words"
    changes = event(
        EventKind.REVIEW, 18, is_pull=True, review_state="changes_requested", body="Add a test."
    )
    assert await rig.deliver(changes) == "continued coder's session (review by @alice)"
    [call] = rig.launcher.named("follow_up")
    assert "Add a test." in call[2]
    assert (await rig.record(key)).state == "working"


async def test_a_review_of_another_pull_request_is_ignored(rig: WorkRig) -> None:
    """A review of a PR that is no run's does nothing."""
    await _with_pull(rig)
    ev = event(EventKind.REVIEW, 40, is_pull=True, review_state="changes_requested", body="x")
    assert await rig.deliver(ev) == "ignored: a review of no pull request of a run"


async def test_a_queued_run_is_not_continued(rig: WorkRig) -> None:
    """A mention on an issue whose run waits for its agent does not wake it early."""
    rig.launcher.busy_why[AGENT] = "coder is running"
    await rig.deliver(event(EventKind.LABELED, label=LABEL))
    outcome = await rig.deliver(event(EventKind.COMMENT, body=f"@{BOT} hurry"))
    assert outcome == "ignored: the run has not started yet"
    assert rig.launcher.named("follow_up") == []


async def test_the_pull_request_merged_ends_the_run(rig: WorkRig) -> None:
    """Merged: the agent stopped, the branch deleted, the line discarded, the run ended,
    its status comment edited to say so."""
    key = await _with_pull(rig)
    status = rig.status(await rig.record(key))
    before = len(status.history)
    ev = event(EventKind.PULL_CLOSED, 18, actor="bob", is_pull=True, merged=True, head=BRANCH)
    outcome = await rig.deliver(ev)
    assert outcome == "ended coder's run: PR #18 merged, its branch deleted"
    assert rig.api.deleted_branches == [(str(SLUG), BRANCH)]
    assert rig.launcher.ops()[-2:] == ["stop", "discard"]
    record = await rig.record(key)
    assert (record.state, record.ended_at) == ("ended", rig.clock.now())
    assert record.summary == "the pull request was merged by @bob, its branch deleted"
    assert len(status.history) == before + 1 and status.history[-1] != status.history[-2]
    said = status.history[-1]
    assert said.startswith("**coder** · 🏁 Ended: its pull request was merged.")
    assert "Summary: the pull request was merged by `@bob`, its branch deleted" in said
    assert await rig.ledger.forge.live_forge_run(FORGE, SLUG, 3) is None


async def test_chat_hears_how_the_pull_request_ended(ledger: Ledger, clock: ManualClock) -> None:
    """Merged on the forge: chat hears which pull request, that it was merged, and by whom."""
    told: list[PullNews | NoRunNews] = []

    async def tell(news: PullNews | NoRunNews) -> None:
        told.append(news)

    rig = WorkRig.make(ledger, clock, tell=tell)
    await _with_pull(rig)
    ev = event(EventKind.PULL_CLOSED, 18, actor="bob", is_pull=True, merged=True, head=BRANCH)
    await rig.deliver(ev)
    [ended] = told
    assert isinstance(ended, PullNews)
    assert (ended.pull, ended.ended, ended.by) == (18, "merged", f"@bob on {FORGE}")


async def test_the_pull_request_closed_unmerged_keeps_the_branch(rig: WorkRig) -> None:
    """Closed without merging: the run ends, its branch stays upstream."""
    key = await _with_pull(rig)
    ev = event(EventKind.PULL_CLOSED, 18, is_pull=True, merged=False, head=BRANCH)
    assert await rig.deliver(ev) == "ended coder's run: PR #18 closed"
    assert rig.api.deleted_branches == []
    assert rig.launcher.named("discard")
    record = await rig.record(key)
    assert record.state == "ended"
    said = rig.status(record).history[-1]
    assert said.startswith("**coder** · 🏁 Ended: its pull request was closed.")


async def test_a_branch_the_forge_will_not_delete_is_said_kept(rig: WorkRig) -> None:
    """The forge refusing the branch's deletion still ends the run, saying so."""
    await _with_pull(rig)
    rig.api.failures["delete_branch"] = ForgeApiError("GitHub refused DELETE: 422", 422)
    ev = event(EventKind.PULL_CLOSED, 18, is_pull=True, merged=True)
    assert await rig.deliver(ev) == "ended coder's run: PR #18 merged, its branch kept (422)"


async def test_unlabelling_the_issue_stops_the_run(rig: WorkRig) -> None:
    """The trigger label taken off by a writer: the agent stopped, the run stopped."""
    record = await rig.started()
    other = event(EventKind.UNLABELED, label="bug")
    assert await rig.deliver(other) == "ignored: nothing to do"
    outcome = await rig.deliver(event(EventKind.UNLABELED, label=LABEL))
    assert outcome == "stopped coder: the issue was unlabelled"
    [stop] = rig.launcher.named("stop")
    assert stop[1] == AGENT and "@alice" in stop[2]
    fresh = await rig.record(record.id)
    assert (fresh.state, fresh.summary) == ("stopped", "the issue was unlabelled by @alice")
    assert fresh.ended_at is not None
    assert rig.status(fresh).history[-1] != rig.status(fresh).history[0]


async def test_unassigning_the_bot_or_closing_the_issue_stops_the_run(rig: WorkRig) -> None:
    """Unassigned from the bot: stopped; a new trigger then starts a fresh run, and
    closing the issue stops that one."""
    await rig.started()
    outcome = await rig.deliver(event(EventKind.UNASSIGNED, assignee=BOT))
    assert outcome == "stopped coder: the issue was unassigned"
    await rig.started()
    assert len(await rig.ledger.forge.forge_runs(live=False)) == 2
    assert await rig.deliver(event(EventKind.CLOSED)) == "stopped coder: the issue was closed"
    assert await rig.ledger.forge.forge_runs() == []


async def test_a_reader_cannot_stop_the_run(rig: WorkRig) -> None:
    """Taking the label off needs the same right as putting it on."""
    record = await rig.started()
    rig.api.allow("mallory", "read")
    ev = event(EventKind.UNLABELED, actor="mallory", label=LABEL)
    assert (await rig.deliver(ev)).startswith("ignored: @mallory may not")
    assert rig.launcher.named("stop") == []
    assert (await rig.record(record.id)).state == "working"


def test_a_mention_is_a_whole_word() -> None:
    """`@login` counts at a word's edges only: not `@login2`, not `x@login`, any case."""
    assert mentions("@fleet-bot, go", "fleet-bot")
    assert mentions("go (@Fleet-Bot).", "fleet-bot")
    assert not mentions("@fleet-bot2", "fleet-bot")
    assert not mentions("@fleet-bot-dev", "fleet-bot")
    assert not mentions("me@fleet-bot.org", "fleet-bot")
    assert not mentions("fleet-bot", "fleet-bot")


def test_an_event_reads_back_as_kept() -> None:
    """Every field survives the ledger's keeping; anything else reads as no event."""
    ev = replace(
        event(EventKind.COMMENT, body="please `fix` it", comment_id=9),
        label="x",
        confirm=True,
    )
    assert event_of(kept(ev)) == ev
    for bad in ("", "{}", "[1]", kept(ev).replace('"number":3', '"number":"3"'), "not json"):
        assert event_of(bad) is None, bad


async def test_a_delivery_taken_but_not_acted_on_is_acted_on_at_the_next_start(
    rig: WorkRig,
) -> None:
    """Fleetwarden stopped between taking a labelled delivery and acting on it: the next
    start acts on it once — the run starts, the outcome is written — and again finds none."""
    ev = event(EventKind.LABELED, label=LABEL)
    assert await rig.ledger.forge.take_delivery(ev.forge, ev.delivery, ev.name, kept(ev))
    assert rig.launcher.starts == []
    assert await rig.work.resume_kept() == 1
    await rig.work.settle()
    assert [s["agent"] for s in rig.launcher.starts] == [AGENT]
    [record] = [d for d in await rig.ledger.forge.deliveries(FORGE) if d.delivery == ev.delivery]
    assert record.outcome.startswith(f"started {AGENT} on #3"), record.outcome
    assert await rig.work.resume_kept() == 0
    assert len(rig.launcher.starts) == 1


async def test_a_rate_limited_forge_is_left_alone_and_what_waited_is_acted_on_after(
    rig: WorkRig,
) -> None:
    """The forge answers "rate limited, retry at T": the delivery is kept, not failed; the
    next one waits without a call; once T passes, both are acted on, once each."""
    retry = rig.clock.now() + timedelta(seconds=90)
    rig.api.failures["issue"] = ForgeRateLimited("rate limited", 429, retry)
    first = event(EventKind.LABELED, label=LABEL)
    assert await rig.deliver(first) == ""  # kept: no outcome yet
    assert rig.work.holds.quiet_until == {FORGE: retry}
    calls = len(rig.api.calls)
    second = event(EventKind.LABELED, number=4, label=LABEL)
    rig.api.add_issue(4)
    assert await rig.deliver(second) == ""
    assert len(rig.api.calls) == calls  # not called while it is limited
    del rig.api.failures["issue"]
    rig.clock.advance(91)
    assert not rig.work.quiet(FORGE)  # lifted: what waited is acted on
    await rig.work.settle()
    outcomes = {d.delivery: d.outcome for d in await rig.ledger.forge.deliveries(FORGE)}
    assert outcomes[first.delivery].startswith(f"started {AGENT} on #3"), outcomes
    assert outcomes[second.delivery] != "", outcomes  # acted on (queued behind #3, say)
    assert await rig.work.resume_kept() == 0


async def test_a_run_waiting_in_the_spawn_queue_is_left_to_its_turn(rig: WorkRig) -> None:
    """A queued run with a place in the fleet's spawn queue: the watch round neither asks
    the forge for its issue nor launches it; its turn, when the queue gives it, does."""
    rig.launcher.busy_why[AGENT] = "global max_running 1 reached (1 running)"
    await rig.deliver(event(EventKind.LABELED, label=LABEL))
    record = await rig.run()
    assert record.state == "queued"
    rig.launcher.in_queue.add(record.id)
    del rig.launcher.busy_why[AGENT]
    asked = len(rig.api.calls)
    outcome = await rig.work.starts.launch(record)
    assert outcome == "queued: global max_running 1 reached (1 running)"
    assert len(rig.api.calls) == asked and rig.launcher.starts == []
    outcome = await rig.work.starts.launch(record, own_turn=True)
    assert outcome.startswith("started coder on #3") and len(rig.launcher.starts) == 1


async def test_a_queued_run_stopped_gives_up_its_place_in_the_spawn_queue(rig: WorkRig) -> None:
    """The issue unlabelled while its run waits in the fleet's spawn queue: the run stops
    and its place is dropped, so nothing of it starts or answers for the agent later."""
    rig.launcher.busy_why[AGENT] = "global max_running 1 reached (1 running)"
    await rig.deliver(event(EventKind.LABELED, label=LABEL))
    record = await rig.run()
    rig.launcher.in_queue.add(record.id)
    outcome = await rig.deliver(event(EventKind.UNLABELED, label=LABEL))
    assert outcome.startswith("stopped coder")
    assert rig.launcher.named("unqueue") == [("unqueue", record.id)]
    assert rig.launcher.in_queue == set()
