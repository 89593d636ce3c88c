"""The address a forge credits a user's commits to, asked of the strict fakes as each
client asks the real forge: GitHub's documented no-reply `ID+LOGIN@users.noreply.github.com`
from the user's id, Gitea's shown address (its no-reply placeholder for a hidden one); no
such user is None; the fakes' judges find nothing wrong with the calls."""

from __future__ import annotations

from fleet.forge.gitea import GiteaApi
from fleet.forge.github import GitHubApi
from fleet.forge.model import Slug
from fleet.repos.identity import forge_co_author
from tests.fakes.gitea_api import GITEA_TOKEN, FakeGitea
from tests.fakes.github_api import DEFAULT_PAT, FakeGitHub

SLUG = Slug("acme", "app")


async def test_github_credits_a_user_at_their_id_based_no_reply_address() -> None:
    """alice, seen by the forge, is `ID+alice@users.noreply.github.com` with her id; a
    login GitHub does not know is None."""
    async with FakeGitHub() as github:
        github.add_repo("acme/app", base_sha="1" * 40, files={"README.md": "hi\n"})
        github.add_collaborator("acme/app", "alice", "write")
        api = GitHubApi(github.api_url, DEFAULT_PAT)
        try:
            address = await api.commit_address(SLUG, "alice")
            assert await api.commit_address(SLUG, "nobody-at-all") is None
        finally:
            await api.close()
        alice = github.accounts.find("alice")
        assert alice is not None
        assert address == f"{alice.id}+alice@users.noreply.github.com"
        assert forge_co_author("alice", address) == f"alice <{address}>"
    assert github.violations == []


async def test_gitea_credits_a_user_at_the_address_it_shows() -> None:
    """A Gitea user with a hidden address is shown (and credited) at the no-reply
    placeholder; a login no one has is None."""
    async with FakeGitea() as gitea:
        gitea.add_user("ann")
        api = GiteaApi(gitea.api_url, GITEA_TOKEN)
        try:
            assert await api.commit_address(SLUG, "ann") == "ann@noreply.localhost"
            assert await api.commit_address(SLUG, "ghost") is None
        finally:
            await api.close()
    assert gitea.violations == []
