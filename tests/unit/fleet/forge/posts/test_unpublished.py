"""Tests for a forge run whose pull request could not be opened at its `done ok`: it is
`unpublished`, not failed; why is said once on the issue and in chat in Fleetwarden's
words (fleet.forge.posts.unpublished) with what opens it, and kept in the status comment, whose
footer says how long the work took; the forge runs' round tries again every few minutes
and `pr` opens it at once, the run and its status comment following."""

from __future__ import annotations

import pytest

from fleet.errors import FleetwardenError
from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.facts import PullNews
from fleet.forge.model import ForgeApiError
from fleet.forge.posts.unpublished import RETRY_MINUTES, fix_words, why_unpublished
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import AGENT, BRANCH, NO_SCOPE, SLUG, WorkRig, forge_entry


@pytest.fixture
def unpublished_told() -> list[PullNews]:
    return []


@pytest.fixture
def unpublished_rig(
    ledger: Ledger, clock: ManualClock, unpublished_told: list[PullNews]
) -> WorkRig:
    async def tell(news: PullNews) -> None:
        unpublished_told.append(news)

    return WorkRig.make(ledger, clock, tell=tell)


async def test_a_refused_pull_request_leaves_the_run_unpublished_saying_why(
    unpublished_rig: WorkRig, unpublished_told: list[PullNews]
) -> None:
    """Not `failed`: the issue hears once why and that `pr coder` opens it; chat hears
    the same; the status comment says it, its footer not "still running"."""
    record = await unpublished_rig.refused_at_done()
    assert record.state == "unpublished" and unpublished_rig.api.pulls == {}
    [said] = [t for t in unpublished_rig.api.texts_on(3) if "is done, but" in t]
    assert "its pull request could not be opened" in said
    assert "the forge does not let Fleetwarden's credential open pull requests here" in said
    assert "the operator has the details" in said
    assert "`pr coder` in chat opens it" in said and said.rstrip().endswith("</details>")
    [news] = unpublished_told
    assert (news.agent, news.issue, news.pull) == (AGENT, 3, None)
    assert news.why is not None and "pull requests read and write" in news.why
    assert "(the token in FORGE_TOKEN)" in news.why
    assert news.fix == fix_words(AGENT)
    status = unpublished_rig.status(record).history[-1]
    assert status.startswith("**coder** · ⚠ Done, but its pull request could not be opened.")
    assert "Why: the forge does not let" in status and "Next: `pr coder` in chat" in status
    assert "Failed" not in status and "Fixed the parser." not in status.split("<details>")[0]
    assert "still running" not in status and "; took " in status


async def test_what_the_forge_shows_of_a_refusal_names_no_variable_nor_upstream(
    unpublished_rig: WorkRig, unpublished_told: list[PullNews]
) -> None:
    """Everything posted on the forge — the comment, the status comment and its footer's
    operations, every version — says the kind of refusal only: no variable, no config
    key, no repository path, nothing the forge said; chat and `forge` have all of it."""
    record = await unpublished_rig.refused_at_done()
    posted = [text for c in unpublished_rig.api.posted.values() for text in c.history]
    assert posted
    for text in posted:
        for detail in ("FORGE_TOKEN", "forge_repo", "acme/app (", "Resource not accessible",
                       "read and write", "forge hub"):  # fmt: skip
            assert detail not in text, (detail, text)
    assert "refused: pull request not opened: the forge does not let" in posted[-1]
    why = await unpublished_rig.work.publisher.not_opened_why(record, detail=True)
    assert why is not None and "FORGE_TOKEN" in why and "Resource not accessible" in why
    assert unpublished_told[0].why == why


async def test_the_round_opens_it_once_the_cause_is_fixed(
    unpublished_rig: WorkRig, unpublished_told: list[PullNews]
) -> None:
    """Tried again every few minutes, not every round; a refusal again says nothing more
    on the issue; once the forge takes it, the PR opens with the summary, the run waits
    for review, the status comment follows and chat hears it is open."""
    record = await unpublished_rig.refused_at_done()
    said = len(unpublished_rig.api.comments_on(3))
    await unpublished_rig.watch.tick()  # the first round after the refusal: too soon
    unpublished_rig.clock.advance(60 * RETRY_MINUTES)
    await unpublished_rig.watch.tick()  # tried again, refused again: nothing new said
    assert (
        len(unpublished_rig.api.named("open_pull")) == 2
        and len(unpublished_rig.api.comments_on(3)) == said
    )
    assert (await unpublished_rig.record(record.id)).state == "unpublished" and len(
        unpublished_told
    ) == 1
    unpublished_rig.clock.advance(60)
    del unpublished_rig.api.failures["open_pull"]
    await unpublished_rig.watch.tick()  # within the few minutes: left alone
    assert unpublished_rig.api.pulls == {}
    unpublished_rig.clock.advance(60 * RETRY_MINUTES)
    await unpublished_rig.watch.tick()
    [pull] = unpublished_rig.api.pulls.values()
    fresh = await unpublished_rig.record(record.id)
    assert (fresh.state, fresh.pull) == ("waiting", pull.number)
    assert any("Fixed the parser." in t for t in unpublished_rig.api.texts_on(pull.number))
    assert unpublished_rig.status(fresh).history[-1].startswith("**coder** · ✅ Done")
    assert (unpublished_told[-1].pull, unpublished_told[-1].pull_url, unpublished_told[-1].why) == (
        pull.number,
        pull.url,
        None,
    )


async def test_pr_opens_it_now_and_the_run_follows(
    unpublished_rig: WorkRig, unpublished_told: list[PullNews]
) -> None:
    """`pr coder` (open_now) on an unpublished run: the PR opens, the run waits for
    review with its summary posted; its status comment says so."""
    record = await unpublished_rig.refused_at_done()
    del unpublished_rig.api.failures["open_pull"]
    pull = await unpublished_rig.work.publisher.open_now(record, draft=True)
    fresh = await unpublished_rig.record(record.id)
    assert (fresh.state, fresh.pull) == ("waiting", pull.number)
    assert any("Fixed the parser." in t for t in unpublished_rig.api.texts_on(pull.number))
    assert (
        "✅ Done: the pull request waits for review." in unpublished_rig.status(fresh).history[-1]
    )
    assert len(unpublished_told) == 1  # `pr` answers in chat itself


async def test_a_working_run_s_pull_request_opened_early_stays_working(
    unpublished_rig: WorkRig, unpublished_told: list[PullNews]
) -> None:
    """`pr` while the agent still works opens the PR and changes nothing else: the run
    works on, its done unsaid; nothing is posted on the issue beyond its status comment,
    and chat hears nothing (`pr` answers there itself)."""
    record = await unpublished_rig.started()
    pull = await unpublished_rig.work.publisher.open_now(record, draft=False)
    assert list(unpublished_rig.api.pulls) == [(str(SLUG), pull.number)]
    fresh = await unpublished_rig.record(record.id)
    assert (fresh.state, fresh.done_signal, fresh.done_status) == ("working", None, None)
    assert len(unpublished_rig.api.comments_on(3)) == 1 and unpublished_told == []


@pytest.mark.parametrize(
    ("refusal", "words"),
    [
        (ForgeApiError("GitHub refused POST /x: 401 Bad credentials", 401),
         "did not take Fleetwarden's credential (it said: Bad credentials): set the token in "
         "FORGE_TOKEN to a valid one"),
        (NO_SCOPE, "does not let Fleetwarden's credential (the token in FORGE_TOKEN) open pull "
         "requests on acme/app (it said: Resource not accessible by personal access token)"),
        (ForgeApiError("GitHub refused POST /x: 404 Not Found", 404),
         "answered that acme/app is not there for Fleetwarden's credential"),
        (ForgeApiError(
            f"GitHub refused POST /x: 422 A pull request already exists for acme:{BRANCH}.", 422),
         f"says a pull request from {BRANCH} already exists"),
        (ForgeApiError("GitHub refused POST /x: 422 No commits between trunk and b", 422),
         f"the branch {BRANCH} has no commits its base lacks: there is nothing to review"),
        (ForgeApiError("could not reach GitHub for POST /x: Connection refused"),
         "forge hub could not be reached (could not reach GitHub for POST /x: Connection "
         "refused)"),
        (ForgeApiError("GitHub refused POST /x: 502 Server Error", 502),
         "forge hub failed to answer (502) (it said: Server Error)"),
        (ForgeRateLimited("GitHub refused POST /x: 403 API rate limit exceeded", 403, None),
         "forge hub is rate limiting Fleetwarden's calls"),
        (FleetwardenError("the upstream refused the push"),
         f"the branch {BRANCH} could not be pushed: the upstream refused the push"),
    ],
)  # fmt: skip
def test_each_refusal_is_said_in_fleetwardens_words(refusal: Exception, words: str) -> None:
    """The forge's status read into what it means and what to change; what it said kept
    after ours; a push's refusal as the git door said it."""
    said = why_unpublished(refusal, forge="hub", entry=forge_entry(), slug=str(SLUG), branch=BRANCH)
    assert words in said.detail
    for detail in ("FORGE_TOKEN", "acme/app", "it said", "POST /x", "Connection refused",
                   "the upstream refused"):  # fmt: skip
        assert detail not in said.public, (detail, said.public)


def test_an_apps_credential_is_named_by_its_key() -> None:
    """A GitHub App's 401 names the variable of its key, never a value."""
    entry = forge_entry(token_env=None, app={"app_id_env": "GH_APP_ID", "private_key_env": "K"})
    refusal = ForgeApiError("GitHub refused POST /x: 401 Bad credentials", 401)
    said = why_unpublished(refusal, forge="hub", entry=entry, slug="acme/app", branch=BRANCH)
    assert "the GitHub App's key in K" in said.detail and "K" not in said.public
    assert said.public == "the forge refused Fleetwarden's credential; the operator has the details"
