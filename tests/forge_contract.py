"""The forge contract: what every implementation of :class:`fleet.forge.model.ForgeApi`
does — the GitHub and Gitea clients on their strict fakes (which answer as the published
API descriptions say) and the in-memory double forge work's tests use — checked by one
suite.

A test module subclasses :class:`ForgeContract` and gives it a ``forge`` fixture,
parametrised over the implementations it can run: the suite then runs against each. A
:class:`ForgeHarness` is the client, the repository it works on, and what people do on
the forge (open an issue, comment, label, open and review a pull request, merge it) and
what the forge then holds (its branches, the reviews asked for). Every call of the
protocol is made with the same assertions on each implementation.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from fleet.forge.model import CheckRun, ForgeApi, ForgeApiError
from fleet.ledger.records.forge import Slug

WRITER = "wendy"
STRANGER = "stranger"
NO_ONE = "nobody-at-all"
TRIGGER = "fleetwarden:coder"


class ForgeHarness(Protocol):
    """One implementation of the protocol, on repository :attr:`repo` of its forge, with
    org ``acme`` and its team ``devs``; the client acts as :attr:`bot`, an administrator
    of the repository, and :data:`WRITER` may write to it."""

    @property
    def api(self) -> ForgeApi: ...

    @property
    def repo(self) -> Slug: ...

    @property
    def bot(self) -> str: ...

    def opens_issue(self, title: str, body: str, *, author: str) -> int:
        """``author`` opens an issue; its number."""
        ...

    def comments(self, number: int, body: str, *, author: str) -> int:
        """``author`` comments on ``number``; the comment's id."""
        ...

    def labels(self, number: int, label: str, *, by: str, taken: bool = False) -> None:
        """``by`` gives ``number`` the label (takes it away: ``taken``)."""
        ...

    def assigns(self, number: int, login: str, *, by: str) -> None: ...

    def closes(self, number: int) -> None:
        """The issue closed."""
        ...

    def branch(self, name: str, files: dict[str, str]) -> None:
        """Branch ``name`` off the default one, ``files`` changed on it."""
        ...

    def opens_pull(self, head: str, *, author: str) -> int:
        """``author`` opens a pull request from ``head`` into the default branch."""
        ...

    def reviews(self, number: int, state: str, body: str, *, author: str) -> None:
        """``author`` submits a review (``CHANGES_REQUESTED``, ``APPROVED``)."""
        ...

    def merges(self, number: int) -> None: ...

    def member(self, login: str) -> None:
        """``login`` joins org ``acme`` and its team ``devs``."""
        ...

    def user(self, login: str) -> None:
        """An account ``login`` exists on the forge, with no right to the repository."""
        ...

    def branches(self) -> set[str]:
        """The repository's branches now."""
        ...

    def asked_to_review(self, number: int) -> list[str]:
        """Whom the forge holds a review request of pull request ``number`` for."""
        ...

    def draft(self, number: int) -> bool:
        """Whether the forge holds pull request ``number`` for a draft."""
        ...

    def reviews_held(self, number: int) -> list[tuple[str, str]]:
        """The author and body of each review the forge holds of pull request ``number``."""
        ...


class ForgeContract:
    """The suite; a subclass gives the ``forge`` fixture."""

    async def test_an_issue_reads_as_its_author_wrote_it(self, forge: ForgeHarness) -> None:
        number = forge.opens_issue("Fix <b>it</b>", "the body", author=WRITER)
        forge.labels(number, TRIGGER, by=WRITER)
        forge.assigns(number, forge.bot, by=WRITER)
        issue = await forge.api.issue(forge.repo, number)
        assert (issue.number, issue.title, issue.body, issue.author) == (
            number,
            "Fix <b>it</b>",
            "the body",
            WRITER,
        )
        assert issue.labels == (TRIGGER,) and issue.assignees == (forge.bot,)
        assert issue.state == "open" and not issue.is_pull
        assert f"/issues/{number}" in issue.url

    async def test_a_missing_issue_is_a_404(self, forge: ForgeHarness) -> None:
        with pytest.raises(ForgeApiError) as caught:
            await forge.api.issue(forge.repo, 4040)
        assert caught.value.status == 404

    async def test_comments_are_listed_posted_as_the_bot_and_edited(
        self, forge: ForgeHarness
    ) -> None:
        number = forge.opens_issue("t", "b", author=WRITER)
        said = forge.comments(number, "first", author=WRITER)
        posted = await forge.api.comment(forge.repo, number, "working on it")
        assert posted.author == forge.bot and posted.body == "working on it"
        await forge.api.edit_comment(forge.repo, posted.id, "done", number=number)
        listed = await forge.api.comments(forge.repo, number)
        assert [(c.id, c.author, c.body) for c in listed] == [
            (said, WRITER, "first"),
            (posted.id, forge.bot, "done"),
        ]
        with pytest.raises(ForgeApiError) as caught:
            await forge.api.edit_comment(forge.repo, 4_040_404, "no such comment", number=number)
        assert caught.value.status == 404

    async def test_a_pull_request_is_opened_found_edited_and_read(
        self, forge: ForgeHarness
    ) -> None:
        forge.branch("fleetwarden/issue-3", {"a.txt": "a\n"})
        opened = await forge.api.open_pull(
            forge.repo, head="fleetwarden/issue-3", base="main", title="T", body="B", draft=False
        )
        assert (opened.head, opened.base, opened.title, opened.body) == (
            "fleetwarden/issue-3",
            "main",
            "T",
            "B",
        )
        assert opened.state == "open" and not opened.merged and not opened.draft
        assert opened.author == forge.bot
        found = await forge.api.find_pull(forge.repo, "fleetwarden/issue-3")
        assert found is not None and found.number == opened.number
        assert await forge.api.find_pull(forge.repo, "no-such-branch") is None
        await forge.api.edit_pull(forge.repo, opened.number, title="T2", body="B2")
        read = await forge.api.pull(forge.repo, opened.number)
        assert (read.title, read.body, read.head_sha) == ("T2", "B2", opened.head_sha)
        await forge.api.edit_pull(forge.repo, opened.number, body="B3")
        assert (await forge.api.pull(forge.repo, opened.number)).title == "T2"

    async def test_a_draft_is_a_draft(self, forge: ForgeHarness) -> None:
        forge.branch("draft", {"d.txt": "d\n"})
        opened = await forge.api.open_pull(
            forge.repo, head="draft", base="main", title="T", body="", draft=True
        )
        assert opened.draft and (await forge.api.pull(forge.repo, opened.number)).draft

    async def test_a_merged_pull_request_is_closed_merged_and_found_no_more(
        self, forge: ForgeHarness
    ) -> None:
        forge.branch("feature", {"f.txt": "f\n"})
        number = forge.opens_pull("feature", author=WRITER)
        pull = await forge.api.pull(forge.repo, number)
        assert (pull.author, pull.head, pull.state, pull.merged) == (
            WRITER,
            "feature",
            "open",
            False,
        )
        forge.merges(number)
        merged = await forge.api.pull(forge.repo, number)
        assert merged.state == "closed" and merged.merged
        assert await forge.api.find_pull(forge.repo, "feature") is None

    async def test_a_review_is_asked_for_and_reviews_read_in_githubs_words(
        self, forge: ForgeHarness
    ) -> None:
        forge.branch("feature", {"f.txt": "f\n"})
        opened = await forge.api.open_pull(
            forge.repo, head="feature", base="main", title="T", body="", draft=False
        )
        await forge.api.request_review(forge.repo, opened.number, [WRITER])
        assert forge.asked_to_review(opened.number) == [WRITER]
        forge.reviews(opened.number, "CHANGES_REQUESTED", "not yet", author=WRITER)
        forge.reviews(opened.number, "APPROVED", "good", author=WRITER)
        reviews = await forge.api.reviews(forge.repo, opened.number)
        assert [(r.author, r.state, r.body) for r in reviews] == [
            (WRITER, "changes_requested", "not yet"),
            (WRITER, "approved", "good"),
        ]

    async def test_a_review_is_posted_with_its_body(self, forge: ForgeHarness) -> None:
        forge.branch("feature", {"f.txt": "f\n"})
        opened = await forge.api.open_pull(
            forge.repo, head="feature", base="main", title="T", body="", draft=False
        )
        body = "Looks right.\n\n<sub>reviewed by agent reviewer</sub>"
        address = await forge.api.review(forge.repo, opened.number, body)
        assert str(opened.number) in address and address.startswith("http")
        assert forge.reviews_held(opened.number) == [(forge.bot, body)]
        reviews = await forge.api.reviews(forge.repo, opened.number)
        assert [(r.author, r.state, r.body) for r in reviews] == [(forge.bot, "commented", body)]

    async def test_ones_own_approval_or_changes_asked_are_refused_with_422(
        self, forge: ForgeHarness
    ) -> None:
        forge.branch("feature", {"f.txt": "f\n"})
        opened = await forge.api.open_pull(
            forge.repo, head="feature", base="main", title="T", body="", draft=False
        )
        for event in ("APPROVE", "REQUEST_CHANGES"):
            with pytest.raises(ForgeApiError) as caught:
                await forge.api.review(forge.repo, opened.number, "mine", event=event)
            assert caught.value.status == 422
            assert "own pull" in str(caught.value)
        assert forge.reviews_held(opened.number) == []

    async def test_anothers_pull_request_is_approved_or_changes_asked(
        self, forge: ForgeHarness
    ) -> None:
        forge.branch("feature", {"f.txt": "f\n"})
        number = forge.opens_pull("feature", author=WRITER)
        await forge.api.review(forge.repo, number, "not yet", event="REQUEST_CHANGES")
        await forge.api.review(forge.repo, number, "good now", event="APPROVE")
        reviews = await forge.api.reviews(forge.repo, number)
        assert [(r.author, r.state, r.body) for r in reviews] == [
            (forge.bot, "changes_requested", "not yet"),
            (forge.bot, "approved", "good now"),
        ]

    async def test_a_missing_pull_request_is_not_reviewed(self, forge: ForgeHarness) -> None:
        with pytest.raises(ForgeApiError) as caught:
            await forge.api.review(forge.repo, 4040, "no such pull request")
        assert caught.value.status == 404

    async def test_a_draft_is_lifted_and_a_ready_one_left_alone(self, forge: ForgeHarness) -> None:
        forge.branch("draft", {"d.txt": "d\n"})
        opened = await forge.api.open_pull(
            forge.repo, head="draft", base="main", title="Fix it", body="", draft=True
        )
        assert forge.draft(opened.number)
        await forge.api.ready_for_review(forge.repo, opened.number)
        assert not forge.draft(opened.number)
        read = await forge.api.pull(forge.repo, opened.number)
        assert not read.draft and read.title == "Fix it"
        await forge.api.ready_for_review(forge.repo, opened.number)  # ready already: nothing
        assert not forge.draft(opened.number)

    async def test_a_file_is_read_at_the_default_branch_or_a_ref(self, forge: ForgeHarness) -> None:
        forge.branch("other", {"src/a.py": "x = 2\n"})
        here = await forge.api.file(forge.repo, "src/a.py")
        there = await forge.api.file(forge.repo, "src/a.py", ref="other")
        assert (here.path, here.text, here.truncated) == ("src/a.py", "x = 1\n", False)
        assert there.text == "x = 2\n" and here.sha and there.sha and here.sha != there.sha
        with pytest.raises(ForgeApiError) as caught:
            await forge.api.file(forge.repo, "nope.txt")
        assert caught.value.status == 404

    async def test_permission_org_and_team(self, forge: ForgeHarness) -> None:
        forge.member(WRITER)
        forge.user(STRANGER)
        assert await forge.api.permission(forge.repo, forge.bot) == "admin"
        assert await forge.api.permission(forge.repo, WRITER) == "write"
        assert await forge.api.permission(forge.repo, NO_ONE) == "none"
        assert await forge.api.in_org("acme", WRITER)
        assert not await forge.api.in_org("acme", STRANGER)
        assert await forge.api.in_team("acme", "devs", WRITER)
        assert not await forge.api.in_team("acme", "devs", STRANGER)

    async def test_a_known_user_has_a_commit_address_and_no_one_none(
        self, forge: ForgeHarness
    ) -> None:
        address = await forge.api.commit_address(forge.repo, WRITER)
        assert address is not None and WRITER in address and "noreply" in address
        assert await forge.api.commit_address(forge.repo, NO_ONE) is None

    async def test_a_branch_deleted_is_gone_and_deleting_it_again_is_fine(
        self, forge: ForgeHarness
    ) -> None:
        forge.branch("fleetwarden/issue-9", {"n.txt": "n\n"})
        await forge.api.delete_branch(forge.repo, "fleetwarden/issue-9")
        assert "fleetwarden/issue-9" not in forge.branches()
        await forge.api.delete_branch(forge.repo, "fleetwarden/issue-9")
        assert "main" in forge.branches()

    async def test_open_issues_since_leave_out_closed_and_older_ones(
        self, forge: ForgeHarness
    ) -> None:
        kept = forge.opens_issue("kept", "", author=WRITER)
        gone = forge.opens_issue("gone", "", author=WRITER)
        forge.closes(gone)
        listed = [i.number for i in await forge.api.open_issues(forge.repo) if not i.is_pull]
        assert listed == [kept]
        at = (await forge.api.issue(forge.repo, kept)).updated_at
        assert [i.number for i in await forge.api.open_issues(forge.repo, since=at)] == [kept]
        later = at.replace(year=at.year + 1)
        assert await forge.api.open_issues(forge.repo, since=later) == []

    async def test_issue_changes_say_who_gave_and_took_what(self, forge: ForgeHarness) -> None:
        number = forge.opens_issue("t", "", author=WRITER)
        forge.labels(number, TRIGGER, by=WRITER)
        forge.assigns(number, forge.bot, by=WRITER)
        forge.labels(number, TRIGGER, by=forge.bot, taken=True)
        changes = await forge.api.issue_changes(forge.repo, number)
        assert [(c.kind, c.name, c.actor) for c in changes] == [
            ("labeled", TRIGGER, WRITER),
            ("assigned", forge.bot, WRITER),
            ("unlabeled", TRIGGER, forge.bot),
        ]
        assert [c.at for c in changes] == sorted(c.at for c in changes)

    async def test_a_check_run_is_made_and_updated_or_not_at_all(self, forge: ForgeHarness) -> None:
        sha = "a" * 40
        made = await forge.api.check_run(
            forge.repo, CheckRun(head_sha=sha, title="Fleetwarden", summary="s", status="queued")
        )
        if made is None:  # the forge (or this credential) has no check runs
            return
        again = await forge.api.check_run(
            forge.repo,
            CheckRun(
                head_sha=sha,
                title="Fleetwarden",
                summary="done",
                status="completed",
                conclusion="success",
            ),
            check_id=made,
        )
        assert again == made

    async def test_whoami_git_token_and_close(self, forge: ForgeHarness) -> None:
        assert await forge.api.whoami() == forge.bot
        token = await forge.api.git_token(forge.repo)
        assert token and token not in repr(forge.api)
        await forge.api.close()
        await forge.api.close()  # closing twice is fine (the fixture closes too)


__all__ = ["NO_ONE", "STRANGER", "TRIGGER", "WRITER", "ForgeContract", "ForgeHarness"]
