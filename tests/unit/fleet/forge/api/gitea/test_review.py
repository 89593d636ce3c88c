"""A review and a draft lifted on Gitea: the client against the strict fake Gitea (held
to Gitea's swagger) — the review in Gitea's words (``APPROVED``), Gitea's 422s for one's
own approval and for a comment without words, and a draft's WIP prefix taken off its
title, whichever of Gitea's prefixes it bears."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fleet.forge.api.gitea.client import GiteaApi
from fleet.forge.api.gitea.read import without_wip
from fleet.forge.model import ForgeApiError
from fleet.ledger.records.forge import Slug
from tests.fakes.gitea.api import BOT_LOGIN, GITEA_TOKEN, FakeGitea

REPO = "acme/app"
SLUG = Slug("acme", "app")


@pytest.fixture
async def gitea_review_gitea() -> AsyncIterator[FakeGitea]:
    async with FakeGitea() as fake:
        fake.add_repo(REPO, files={"README.md": "hello\n"})
        fake.add_collaborator(REPO, BOT_LOGIN, "admin")
        fake.add_collaborator(REPO, "alice", "write")
        yield fake
    assert fake.violations == []


@pytest.fixture
async def gitea_review_api(gitea_review_gitea: FakeGitea) -> AsyncIterator[GiteaApi]:
    client = GiteaApi(gitea_review_gitea.api_url, GITEA_TOKEN)
    yield client
    await client.close()


def test_the_wip_prefixes_come_off_however_many() -> None:
    assert without_wip("WIP: Fix it") == "Fix it"
    assert without_wip("[wip] Fix it") == "Fix it"
    assert without_wip("wip:[WIP]  WIP: Fix it") == "Fix it"
    assert without_wip("Fix WIP: it") == "Fix WIP: it"
    assert without_wip("WIP:") == ""


async def test_a_review_is_posted_in_giteas_words(
    gitea_review_gitea: FakeGitea, gitea_review_api: GiteaApi
) -> None:
    number = gitea_review_gitea.add_pull(REPO, "feature", author="alice")
    address = await gitea_review_api.review(SLUG, number, "Fine by me.", event="APPROVE")
    await gitea_review_api.review(SLUG, number, "One more thing.", event="REQUEST_CHANGES")
    await gitea_review_api.review(SLUG, number, "Noted.")
    assert gitea_review_gitea.reviews_of(REPO, number) == [
        (BOT_LOGIN, "APPROVED", "Fine by me."),
        (BOT_LOGIN, "REQUEST_CHANGES", "One more thing."),
        (BOT_LOGIN, "COMMENT", "Noted."),
    ]
    assert f"/{REPO}/pulls/{number}#issuecomment-" in address


async def test_ones_own_approval_is_giteas_422_in_its_words(
    gitea_review_gitea: FakeGitea, gitea_review_api: GiteaApi
) -> None:
    number = gitea_review_gitea.add_pull(REPO, "feature", author=BOT_LOGIN)
    with pytest.raises(ForgeApiError) as approving:
        await gitea_review_api.review(SLUG, number, "mine", event="APPROVE")
    with pytest.raises(ForgeApiError) as asking:
        await gitea_review_api.review(SLUG, number, "mine", event="REQUEST_CHANGES")
    assert approving.value.status == asking.value.status == 422
    assert str(approving.value).endswith("approve your own pull is not allowed")
    assert str(asking.value).endswith("reject your own pull is not allowed")
    assert gitea_review_gitea.reviews_of(REPO, number) == []


async def test_a_comment_without_words_is_refused(
    gitea_review_gitea: FakeGitea, gitea_review_api: GiteaApi
) -> None:
    number = gitea_review_gitea.add_pull(REPO, "feature", author="alice")
    with pytest.raises(ForgeApiError) as refused:
        await gitea_review_api.review(SLUG, number, " ")
    assert refused.value.status == 422 and "requires a body" in str(refused.value)


@pytest.mark.parametrize("title", ["WIP: Fix it", "[WIP] Fix it", "wip: Fix it"])
async def test_a_draft_loses_its_prefix_and_nothing_else(
    gitea_review_gitea: FakeGitea, gitea_review_api: GiteaApi, title: str
) -> None:
    number = gitea_review_gitea.add_pull(
        REPO, "feature", title=title, body="the body", author="alice"
    )
    assert gitea_review_gitea.is_draft(REPO, number)
    await gitea_review_api.ready_for_review(SLUG, number)
    assert not gitea_review_gitea.is_draft(REPO, number)
    pull = await gitea_review_api.pull(SLUG, number)
    assert (pull.title, pull.body, pull.draft) == ("Fix it", "the body", False)
    edits = [seen for seen in gitea_review_gitea.requests if seen.method == "PATCH"]
    await gitea_review_api.ready_for_review(SLUG, number)  # ready already: no edit
    assert [seen for seen in gitea_review_gitea.requests if seen.method == "PATCH"] == edits


async def test_a_pull_request_is_made_a_draft_again_by_its_wip_prefix(
    gitea_review_gitea: FakeGitea, gitea_review_api: GiteaApi
) -> None:
    """`to_draft` puts Gitea's WIP prefix back on the title, once."""
    number = gitea_review_gitea.add_pull(
        REPO, "feature", title="Fix it", body="the body", author="alice"
    )
    await gitea_review_api.to_draft(SLUG, number)
    assert gitea_review_gitea.is_draft(REPO, number)
    pull = await gitea_review_api.pull(SLUG, number)
    assert (pull.title, pull.body, pull.draft) == ("WIP: Fix it", "the body", True)
    edits = [seen for seen in gitea_review_gitea.requests if seen.method == "PATCH"]
    await gitea_review_api.to_draft(SLUG, number)  # a draft already: no edit
    assert [seen for seen in gitea_review_gitea.requests if seen.method == "PATCH"] == edits


async def test_a_title_that_is_only_its_prefix_is_not_emptied(
    gitea_review_gitea: FakeGitea, gitea_review_api: GiteaApi
) -> None:
    number = gitea_review_gitea.add_pull(REPO, "feature", title="WIP:", author="alice")
    with pytest.raises(ForgeApiError) as refused:
        await gitea_review_api.ready_for_review(SLUG, number)
    assert "only its WIP prefix" in str(refused.value)
    assert gitea_review_gitea.is_draft(REPO, number)
