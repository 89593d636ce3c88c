"""Work from the forge on Gitea's shapes, end to end, through the real ``fleetwarden run``:
an issue labelled ``fleetwarden:coder`` by a writer on the strict fake Gitea (every request
and answer held to Gitea's own description, its branches read from the real git upstream)
becomes a run of the real Claude Code, sandboxed, against the strict fake provider; it
edits a file and says ``fw-forge done`` through its forge door; Fleetwarden pushes the
branch to the real git upstream (``git http-backend``, which takes only its own token) and
opens one pull request with the provenance footer; a "request changes" review
(``pull_request_review_rejected``) continues the same session and a second commit lands on
the same pull request; the pull request merged and closed ends the run, deletes the
branch upstream and removes the checkout. Signed as Gitea signs them, a replayed, a
mis-signed and a stranger's delivery start nothing. No token reaches the agent, the state
dir or the output."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests import sandbox_need
from tests.fakes.background import fake_provider_thread
from tests.fakes.gitea_api import BOT_LOGIN, GITEA_TOKEN, FakeGitea, fake_gitea_thread
from tests.fakes.gitea_payloads import Event, issue_event, pull_event, review_event
from tests.fakes.provider import Accepted, Turn
from tests.fakes.webhook_sender import gitea_delivery
from tests.git_upstream import GitUpstream, token_anywhere
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge_rig import (
    E2E_KEY,
    bash,
    bot_comments,
    ledger_rows,
    listening,
    post,
    start_e2e_bot,
    write,
)
from tests.integration.runtimes.test_real_clis import cli

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "gitea-e2e-upstream-token-NoAgentHolds9876543210"  # the git upstream's
SECRET = b"gitea-webhook-secret-0123456789abcdef"
STRANGER = "eve"
BRANCH = "fw/coder/issue-1"
LABEL = "fleetwarden:coder"


@pytest.fixture
def gitea(upstream: GitUpstream) -> Iterator[FakeGitea]:
    with fake_gitea_thread() as fake:
        fake.add_repo(str(SLUG))
        fake.link_git(str(SLUG), upstream.root / "app.git")
        fake.add_collaborator(str(SLUG), WRITER, "write")
        # Gitea shows another user's permission only to a repository admin.
        fake.add_collaborator(str(SLUG), BOT_LOGIN, "admin")
        fake.add_user(STRANGER)  # on the Gitea, but no access to the private repository
        yield fake
        assert fake.violations == []


def start_bot(
    tmp_path: Path, upstream: GitUpstream, api: str, provider: str
) -> tuple[ConsoleBot, int]:
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": GITEA_TOKEN, "FORGE_HOOK_SECRET": SECRET.decode()}
    return start_e2e_bot(
        tmp_path,
        forge="tea",
        kind="gitea",
        api=api,
        provider=provider,
        login=BOT_LOGIN,
        url=upstream.url("app"),
        tokens=tokens,
    )


def deliver(
    port: int, event: Event, *, secret: bytes = SECRET, delivery: str | None = None
) -> tuple[int, str]:
    """Post ``event`` to the bot's webhook endpoint as Gitea does; the status and text."""
    name, payload = event
    headers, body = gitea_delivery(name, payload, secret=secret, delivery=delivery)
    return post(port, "tea", headers, body)


def outcome(tmp_path: Path, delivery: str) -> str | None:
    """What the ledger kept as the outcome of ``delivery`` to the forge."""
    sql = "SELECT outcome FROM forge_deliveries WHERE forge = 'tea' AND delivery = ?"
    rows = ledger_rows(tmp_path, sql, delivery)
    return str(rows[0][0]) or None if rows else None  # '': not decided yet


def audited(tmp_path: Path) -> str:
    """The ledger's refused forge operations, one a line."""
    rows = ledger_rows(tmp_path, "SELECT detail FROM forge_audit WHERE allowed = 0")
    return "\n".join(str(row[0]) for row in rows)


def test_a_labelled_gitea_issue_becomes_a_pull_request_that_a_review_continues(
    tmp_path: Path, upstream: GitUpstream, gitea: FakeGitea
) -> None:
    cli("claude")
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    turns = (
        write(checkout / "NOTES.md", "shipped on Friday\n"),
        bash('fw-forge done ok "Wrote the release notes."'),
        Turn(text="Done: the notes are written."),
        write(checkout / "NOTES.md", "shipped on Friday\nby the fleet\n"),
        bash('fw-forge done ok "Added who shipped it, as asked."'),
        Turn(text="Done again."),
    )
    issue = gitea.add_issue(
        str(SLUG), "Write the release notes", "Say when we shipped.", author=WRITER,
        labels=[LABEL],
    )  # fmt: skip
    with fake_provider_thread(
        *turns, default=Turn(text="(no more turns)"), accept=Accepted(api_keys=frozenset({E2E_KEY}))
    ) as provider:
        bot, port = start_bot(tmp_path, upstream, gitea.api_url, provider.base_url)
        try:
            assert wait_until(lambda: listening(port), timeout=60), bot.stderr
            assert issue == 1
            labeled = issue_event(
                "label_updated", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
                labels=[LABEL], title="Write the release notes", body="Say when we shipped.",
            )  # fmt: skip
            # Mis-signed and a stranger's: nothing starts.
            assert deliver(port, labeled, secret=b"not-the-secret")[0] == 401
            stranger = issue_event(
                "label_updated", repo=SLUG, number=issue, sender=STRANGER, author=WRITER,
                labels=[LABEL],
            )  # fmt: skip
            # The stranger really did label it (Gitea's timeline says who): still refused.
            gitea.unlabel(str(SLUG), issue, LABEL, by=STRANGER)
            gitea.add_label(str(SLUG), issue, LABEL, by=STRANGER)
            assert deliver(port, stranger, delivery="stranger-1")[0] == 202
            assert wait_until(lambda: outcome(tmp_path, "stranger-1") is not None, timeout=30)
            said = outcome(tmp_path, "stranger-1") or ""
            assert said.startswith("ignored") and f"@{STRANGER}" in said, said
            assert f"by @{STRANGER} on #1" in audited(tmp_path)  # refused, and audited
            asked = f"/api/v1/repos/acme/app/collaborators/{STRANGER}/permission"
            assert any(seen.path == asked for seen in gitea.requests)
            assert gitea.comments_on(str(SLUG), issue) == []
            status, _ = deliver(port, labeled, delivery="delivery-1")
            assert status == 202
            assert deliver(port, labeled, delivery="delivery-1") == (200, "already had it")

            assert wait_until(lambda: len(gitea.pulls(str(SLUG))) == 1, timeout=180), (
                bot.stdout + bot.stderr
            )
            [pull] = gitea.pulls(str(SLUG))
            assert pull.pull is not None and pull.pull.head == BRANCH
            ref = f"refs/heads/{BRANCH}"
            first = upstream.branches("app").get(ref)
            assert first is not None
            assert pull.pull.head_sha == first  # the fake serves the upstream's tip
            assert upstream.show("app", "show", f"{first}:NOTES.md") == "shipped on Friday"
            assert "<details>" in pull.body
            assert wait_until(
                lambda: any(
                    "is done" in c for c in bot_comments(gitea, SLUG, pull.number, BOT_LOGIN)
                ),
                timeout=30,
            )
            assert (
                len(bot_comments(gitea, SLUG, issue, BOT_LOGIN)) == 1
            )  # one status comment, edited on
            assert len(gitea.comments_on(str(SLUG), issue)) == 1  # the stranger got nothing

            # A "request changes" review continues the same session, on the same PR.
            gitea.submit_review(
                str(SLUG), pull.number, WRITER, "REQUEST_CHANGES", "Say who shipped it."
            )
            review = review_event(
                "rejected", repo=SLUG, number=pull.number, sender=WRITER,
                body="Say who shipped it.", head=BRANCH, author=BOT_LOGIN,
            )  # fmt: skip
            assert deliver(port, review)[0] == 202
            assert wait_until(
                lambda: upstream.branches("app").get(ref) not in (None, first), timeout=180
            ), bot.stdout + bot.stderr
            second = upstream.branches("app")[ref]
            assert upstream.show("app", "show", f"{second}:NOTES.md").endswith("by the fleet")
            [again] = gitea.pulls(str(SLUG))  # still the one pull request, at the new tip
            assert again.number == pull.number
            assert again.pull is not None and again.pull.head_sha == second
            assert wait_until(
                lambda: (
                    sum("is done" in c for c in bot_comments(gitea, SLUG, pull.number, BOT_LOGIN))
                    == 2
                ),
                timeout=60,
            )
            bot.command("forge", r"fw|acme/app#1")
            assert re.search(r"waiting|working", bot.output_since_command)

            # Merged and closed: the run ends, the branch is deleted, the checkout removed.
            gitea.merge_pull(str(SLUG), pull.number, by=WRITER)
            closed = pull_event(
                "closed", repo=SLUG, number=pull.number, sender=WRITER, head=BRANCH, merged=True
            )
            closed_id = "closed-1"
            assert deliver(port, closed, delivery=closed_id)[0] == 202
            assert wait_until(lambda: ref not in upstream.branches("app"), timeout=60), (
                bot.stdout + bot.stderr
            )
            assert BRANCH not in gitea.branches(str(SLUG))
            # Deleted through Gitea's API, which deleted it upstream.
            deleted = [unquote(q.path) for q in gitea.requests if q.method == "DELETE"]
            assert deleted == [f"/api/v1/repos/acme/app/branches/{BRANCH}"]
            assert wait_until(lambda: not checkout.exists(), timeout=60)
            # The one status comment says so, and the delivery's outcome is kept.
            assert wait_until(
                lambda: (
                    "Ended: its pull request was merged."
                    in bot_comments(gitea, SLUG, issue, BOT_LOGIN)[0]
                ),
                timeout=30,
            )
            assert wait_until(lambda: outcome(tmp_path, closed_id) is not None, timeout=30)
            assert (outcome(tmp_path, closed_id) or "").startswith(
                "ended coder's run: PR #2 merged"
            )
            assert len(bot_comments(gitea, SLUG, issue, BOT_LOGIN)) == 1
            bot.command("forge all", r"ended")
            assert token_anywhere(GITEA_TOKEN, tmp_path / "state") == []
            assert token_anywhere(TOKEN, tmp_path / "state") == []
            assert GITEA_TOKEN not in bot.stdout + bot.stderr
            bot.close()
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    # The review went on in the same conversation: the model saw the first turn's words.
    bodies = [r.raw.decode(errors="replace") for r in provider.requests]
    followed = [b for b in bodies if "Say who shipped it." in b]
    assert followed and all("Done: the notes are written." in b for b in followed)
    assert not any(GITEA_TOKEN in b or TOKEN in b for b in bodies)
