"""The address a forge credits a user's commits to, asked of the strict fakes as each
client asks the real forge: GitHub's documented no-reply `ID+LOGIN@users.noreply.github.com`
from the user's id, Gitea's no-reply form of its host (never the address its API shows an
admin, a private one too); no such user is None; the fakes' judges find nothing wrong with
the calls."""

from __future__ import annotations

from fleet.forge.api.gitea.client import GiteaApi
from fleet.forge.api.github.client import GitHubApi
from fleet.forge.api.no_reply import no_reply_address
from fleet.ledger.records.forge import Slug
from fleet.repos.line.identity import forge_co_author
from tests.fakes.gitea.api import BOT_LOGIN, GITEA_TOKEN, FakeGitea
from tests.fakes.github.api import DEFAULT_PAT, FakeGitHub

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


async def test_gitea_credits_a_user_at_its_no_reply_address_never_their_own() -> None:
    """The bot's account is an admin (as the guide asks), so Gitea shows it ann's own
    address though she keeps it private: she is credited at Gitea's no-reply form of the
    API's host all the same (`ann@noreply.localhost`, which Gitea matches to her login);
    a login no one has is None."""
    async with FakeGitea() as gitea:
        gitea.add_user(BOT_LOGIN, admin=True)
        gitea.add_user("Ann", email="ann.lee@private.example.org", private=True)
        api_url = gitea.api_url.replace("127.0.0.1", "localhost")
        api = GiteaApi(api_url, GITEA_TOKEN)
        try:
            assert await api.commit_address(SLUG, "ann") == "ann@noreply.localhost"
            assert await api.commit_address(SLUG, "ghost") is None
        finally:
            await api.close()
        shown = [r for r in gitea.requests if r.path == "/api/v1/users/ann"]
        assert shown and shown[0].login == BOT_LOGIN  # asked as the admin, who sees it
    assert gitea.violations == []


def test_gitea_s_no_reply_domain_is_the_api_s_host_or_none_at_all() -> None:
    """A named host gives `noreply.HOST` (Gitea's default NO_REPLY_ADDRESS for its DOMAIN);
    an IP address names no domain, so the address credits no one (`.invalid`); a login
    Gitea would not have is None."""
    assert no_reply_address("Ann", "https://git.example.com/api/v1") == (
        "ann@noreply.git.example.com"
    )
    assert no_reply_address("ann", "https://Git.Example.com:3000/api/v1") == (
        "ann@noreply.git.example.com"
    )
    assert no_reply_address("ann", "http://10.0.0.7:3000/api/v1") == "ann@noreply.gitea.invalid"
    assert no_reply_address("ann", "http://[::1]:3000/api/v1") == "ann@noreply.gitea.invalid"
    assert no_reply_address("ann lee", "https://git.example.com/api/v1") is None
