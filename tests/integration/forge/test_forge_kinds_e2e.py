"""Work from the forge, end to end, through the real ``fleetwarden run``, on every forge
kind — GitHub, Gitea and GitLab, each a strict fake held to its own published API description,
their branches read from the real git upstream: an issue labelled ``fleetwarden:coder`` by
a writer becomes a run of the real Claude Code, sandboxed, against the strict fake
provider; it edits a file and says ``fw-forge done`` through its forge door; Fleetwarden
pushes the branch to a real git upstream (``git http-backend``, which takes only its own
token) and opens one pull request (on GitLab a draft merge request) with the provenance
footer; a "request changes" review (on GitLab, a note on the merge request) continues the
same session (the model sees the first turn's words) and a second commit
lands on the same pull request; the pull request merged ends the run, deletes the branch
and removes the checkout, and the issue's one task is done, its actual the usage of both
its runs. Signed as each forge signs them, a replayed, a mis-signed and a stranger's
delivery start nothing. No token reaches the agent, the state dir, the output or the
model. What one forge alone shows (GitHub's co-author address; Gitea's timeline of who
labelled, its branch deleted through its API, the delivery's outcome) is checked there."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests import sandbox_need
from tests.fakes.forge.webhook_sender import (
    gitea_delivery,
    github_issue,
    github_pull,
    github_review,
)
from tests.fakes.gitea import api as gitea_api
from tests.fakes.gitea.payloads import issue_event, pull_event, review_event
from tests.fakes.github import api as github_api
from tests.fakes.gitlab import api as gitlab_api
from tests.fakes.gitlab.hooks import (
    gitlab_delivery,
    gitlab_issue,
    gitlab_merge_request,
    gitlab_note,
)
from tests.fakes.gitlab.state import REPORTER
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn
from tests.git_upstream import GitUpstream, token_anywhere
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, killed_on_failure, wait_until
from tests.integration.forge.gitlab_kind import GitLabSeen, on_gitlab
from tests.integration.forge_rig import (
    E2E_KEY,
    bash,
    bot_comments,
    deliver_as_github,
    ledger_rows,
    listening,
    post,
    start_e2e_bot,
    write,
)
from tests.integration.runtimes.test_real_clis import cli

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_e2eUpstreamTokenNoAgentHolds9876543210"  # the git upstream's
SECRET = b"forge-webhook-secret-0123456789abcdef"
STRANGER = "eve"
BRANCH = "fw/coder/issue-1"
LABEL = "fleetwarden:coder"
TITLE, BODY = "Write the release notes", "Say when we shipped."
ASKED = "Say who shipped it."


def deliver_as_gitea(
    port: int, event: Any, delivery: str | None = None, *, secret: bytes = SECRET
) -> tuple[int, str]:
    """Post ``event`` to the bot's webhook endpoint as Gitea does; the status and text."""
    name, payload = event
    headers, body = gitea_delivery(name, payload, secret=secret, delivery=delivery)
    return post(port, "tea", headers, body)


@dataclass(frozen=True)
class Kind:
    """One forge kind as the test drives it: its fake, its name in the config, the token
    Fleetwarden holds for it, how it words the events and signs a delivery."""

    kind: str
    forge: str
    fake: Any  # FakeGitHub or FakeGitea: the same verbs, each in its forge's shapes
    login: str
    pat: str
    changes: str  # the review state that asks for changes
    deliver: Callable[..., tuple[int, str]]
    labeled: Callable[..., Any]
    review: Callable[..., Any]
    closed: Callable[..., Any]


def github_kind(fake: github_api.FakeGitHub) -> Kind:
    return Kind(
        "github", "gh", fake, github_api.BOT_LOGIN, github_api.DEFAULT_PAT, "CHANGES_REQUESTED",
        partial(deliver_as_github, secret=SECRET),
        lambda sender, **more: github_issue(
            "labeled", repo=SLUG, number=1, sender=sender, label=LABEL, **more
        ),
        lambda number: github_review(
            repo=SLUG, number=number, sender=WRITER, body=ASKED, head=BRANCH
        ),
        lambda number: github_pull(
            "closed", repo=SLUG, number=number, sender=WRITER, head=BRANCH, merged=True
        ),
    )  # fmt: skip


def gitea_kind(fake: gitea_api.FakeGitea) -> Kind:
    return Kind(
        "gitea", "tea", fake, gitea_api.BOT_LOGIN, gitea_api.GITEA_TOKEN, "REQUEST_CHANGES",
        deliver_as_gitea,
        lambda sender, **more: issue_event(
            "label_updated", repo=SLUG, number=1, sender=sender, labels=[LABEL],
            **{"author": WRITER, **more},
        ),
        lambda number: review_event(
            "rejected", repo=SLUG, number=number, sender=WRITER, body=ASKED, head=BRANCH,
            author=gitea_api.BOT_LOGIN,
        ),
        lambda number: pull_event(
            "closed", repo=SLUG, number=number, sender=WRITER, head=BRANCH, merged=True
        ),
    )  # fmt: skip


def deliver_as_gitlab(
    port: int, event: Any, delivery: str | None = None, *, secret: bytes = SECRET
) -> tuple[int, str]:
    """Post ``event`` to the bot's webhook endpoint as GitLab does, with ``secret`` as the
    hook's token; the status and text."""
    headers, body = gitlab_delivery(*event, token=secret.decode(), delivery=delivery)
    return post(port, "lab", headers, body)


def gitlab_kind(fake: GitLabSeen) -> Kind:
    return Kind(
        "gitlab", "lab", fake, gitlab_api.BOT_LOGIN, gitlab_api.GITLAB_TOKEN, "",
        deliver_as_gitlab,
        lambda sender, **more: gitlab_issue(
            "update", repo=SLUG, number=1, sender=sender, labels=[LABEL], previous_labels=[],
            **{"author": WRITER, **more},
        ),
        lambda number: gitlab_note(
            repo=SLUG, number=number, sender=WRITER, body=ASKED, on="MergeRequest",
            source_branch=BRANCH,
        ),
        lambda number: gitlab_merge_request(
            "merge", repo=SLUG, number=number, sender=WRITER, source_branch=BRANCH
        ),
    )  # fmt: skip


@pytest.fixture(params=["github", "gitea", "gitlab"])
def forge(request: pytest.FixtureRequest, upstream: GitUpstream) -> Iterator[Kind]:
    """Each forge kind's strict fake with ``acme/app`` on the upstream: :data:`WRITER` may
    write, :data:`STRANGER` is on the forge without access; no violation when it stops."""
    if request.param == "github":
        yield github_kind(request.getfixturevalue("github"))
        return
    if request.param == "gitlab":
        upstream.any_user = True  # GitLab's git takes any user with the token (oauth2 here)
        with gitlab_api.fake_gitlab_thread() as lab:
            kind = gitlab_kind(on_gitlab(lab, upstream.root / "app.git").fake)
            # A Reporter (access 20): reads the project, may not start a run.
            lab.add_member(str(SLUG), STRANGER, REPORTER)
            yield kind
            assert lab.violations == []
        return
    with gitea_api.fake_gitea_thread() as fake:
        fake.add_repo(str(SLUG))
        fake.link_git(str(SLUG), upstream.root / "app.git")
        fake.add_collaborator(str(SLUG), WRITER, "write")
        # Gitea shows another user's permission only to a repository admin.
        fake.add_collaborator(str(SLUG), gitea_api.BOT_LOGIN, "admin")
        fake.add_user(STRANGER)  # on the Gitea, but no access to the private repository
        yield gitea_kind(fake)
        assert fake.violations == []


def start_bot(
    tmp_path: Path, upstream: GitUpstream, forge: Kind, provider: str
) -> tuple[ConsoleBot, int]:
    """``fleetwarden run`` on ``forge``, listening on its webhook port; the bot and port."""
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": forge.pat, "FORGE_HOOK_SECRET": SECRET.decode()}
    bot, port = start_e2e_bot(
        tmp_path, forge=forge.forge, kind=forge.kind, api=forge.fake.api_url,
        provider=provider, login=forge.login, url=upstream.url("app"), tokens=tokens,
    )  # fmt: skip
    with killed_on_failure(bot):
        assert wait_until(lambda: listening(port), timeout=60), bot.stderr
    return bot, port


def outcome(tmp_path: Path, forge: str, delivery: str) -> str | None:
    """What the ledger kept as the outcome of ``delivery`` to ``forge``."""
    sql = "SELECT outcome FROM forge_deliveries WHERE forge = ? AND delivery = ?"
    rows = ledger_rows(tmp_path, sql, forge, delivery)
    return str(rows[0][0]) or None if rows else None  # '': not decided yet


def audited(tmp_path: Path) -> str:
    """The ledger's refused forge operations, one a line."""
    rows = ledger_rows(tmp_path, "SELECT detail FROM forge_audit WHERE allowed = 0")
    return "\n".join(str(row[0]) for row in rows)


def stranger_starts_nothing(tmp_path: Path, forge: Kind, port: int) -> None:
    """A stranger's label is taken (202) and starts nothing; on Gitea, whose event does not
    say who labelled, the stranger really labels it and the timeline refuses them."""
    stranger = forge.labeled(STRANGER)
    if forge.kind == "github":
        assert forge.deliver(port, stranger)[0] == 202
        return
    if forge.kind == "gitlab":  # the stranger really labels it: GitLab's label events say so
        forge.fake.gitlab.label(str(SLUG), 1, LABEL, by=STRANGER, removed=True)
        forge.fake.gitlab.label(str(SLUG), 1, LABEL, by=STRANGER)
    else:
        forge.fake.unlabel(str(SLUG), 1, LABEL, by=STRANGER)
        forge.fake.add_label(str(SLUG), 1, LABEL, by=STRANGER)
    assert forge.deliver(port, stranger, "stranger-1")[0] == 202
    name = forge.forge
    assert wait_until(lambda: outcome(tmp_path, name, "stranger-1") is not None, timeout=30)
    said = outcome(tmp_path, name, "stranger-1") or ""
    assert said.startswith("ignored") and f"@{STRANGER}" in said, said
    assert f"by @{STRANGER} on #1" in audited(tmp_path)  # refused, and audited
    if forge.kind == "gitlab":  # asked of GitLab: the stranger's access to the project
        asked = "/api/v4/projects/acme%2Fapp/members/all/"
        assert any(seen.path.startswith(asked) for seen in forge.fake.requests)
    else:
        asked = f"/api/v1/repos/acme/app/collaborators/{STRANGER}/permission"
        assert any(seen.path == asked for seen in forge.fake.requests)
    assert forge.fake.comments_on(str(SLUG), 1) == []


def first_pull_request(upstream: GitUpstream, forge: Kind, first: str) -> None:
    """What the first pull request shows of its commit, each forge its own way."""
    [pull] = forge.fake.pulls(str(SLUG))
    assert "<details>" in (pull.body or "")
    if forge.kind == "gitlab":  # a draft merge request, closing its issue when merged
        assert pull.title.startswith("Draft: ") and pull.draft, pull.title
        assert "Closes #1" in pull.body
    if forge.kind == "github":
        # Whoever gave the agent the issue is its work's co-author, at GitHub's no-reply.
        writer = forge.fake.accounts.find(WRITER)
        assert writer is not None
        noreply = f"{writer.id}+{WRITER}@users.noreply.github.com"
        message = upstream.show("app", "log", "-1", "--format=%B", first)
        assert f"Co-authored-by: {WRITER} <{noreply}>" in message, message
    else:
        assert pull.pull.head == BRANCH
        assert pull.pull.head_sha == first  # the fake serves the upstream's tip


def ended(tmp_path: Path, forge: Kind, closed: str, pull: int) -> None:
    """The run's end is said in the one status comment and kept as the delivery's outcome;
    on Gitea the branch went through its API, which deleted it upstream."""
    if forge.kind == "gitea":
        assert BRANCH not in forge.fake.branches(str(SLUG))
        deleted = [unquote(q.path) for q in forge.fake.requests if q.method == "DELETE"]
        assert deleted == [f"/api/v1/repos/acme/app/branches/{BRANCH}"]
    if forge.kind == "gitlab":
        assert BRANCH not in forge.fake.branches(str(SLUG))
    assert wait_until(
        lambda: (
            "Ended: its pull request was merged."
            in bot_comments(forge.fake, SLUG, 1, forge.login)[0]
        ),
        timeout=30,
    )
    assert wait_until(lambda: outcome(tmp_path, forge.forge, closed) is not None, timeout=30)
    said = outcome(tmp_path, forge.forge, closed) or ""
    assert said.startswith(f"ended coder's run: PR #{pull} merged"), said


def test_a_labelled_issue_becomes_a_pull_request_that_a_review_continues(
    tmp_path: Path, upstream: GitUpstream, forge: Kind
) -> None:
    """An issue labelled by a writer on each forge kind ends as a merged pull request, the
    review continuing the same session; strangers and bad signatures start nothing."""
    cli("claude")
    fake = forge.fake
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    turns = (
        write(checkout / "NOTES.md", "shipped on Friday\n"),
        bash('fw-forge done ok "Wrote the release notes."'),
        Turn(text="Done: the notes are written."),
        write(checkout / "NOTES.md", "shipped on Friday\nby the fleet\n"),
        bash('fw-forge done ok "Added who shipped it, as asked."'),
        Turn(text="Done again."),
    )
    issue = fake.add_issue(str(SLUG), TITLE, BODY, author=WRITER, labels=[LABEL])
    with fake_provider_thread(
        *turns, default=Turn(text="(no more turns)"), accept=Accepted(api_keys=frozenset({E2E_KEY}))
    ) as provider:
        bot, port = start_bot(tmp_path, upstream, forge, provider.base_url)
        try:
            assert issue == 1
            labeled = forge.labeled(WRITER, author=WRITER, title=TITLE, body=BODY)
            # Mis-signed and a stranger's: nothing starts.
            assert forge.deliver(port, labeled, secret=b"not-the-secret")[0] == 401
            stranger_starts_nothing(tmp_path, forge, port)
            assert forge.deliver(port, labeled, "delivery-1")[0] == 202
            assert forge.deliver(port, labeled, "delivery-1") == (200, "already had it")

            assert wait_until(lambda: len(fake.pulls(str(SLUG))) == 1, timeout=180), (
                bot.stdout + bot.stderr
            )
            [pull] = fake.pulls(str(SLUG))
            assert pull.pull is not None
            ref = f"refs/heads/{BRANCH}"
            first = upstream.branches("app").get(ref)
            assert first is not None
            assert upstream.show("app", "show", f"{first}:NOTES.md") == "shipped on Friday"
            first_pull_request(upstream, forge, first)
            assert wait_until(
                lambda: any(
                    "is done" in c
                    for c in bot_comments(fake, SLUG, pull.number, forge.login, pull=True)
                ),
                timeout=30,
            )
            # One status comment, edited as the run goes; the stranger got nothing.
            assert len(bot_comments(fake, SLUG, issue, forge.login)) == 1
            assert len(fake.comments_on(str(SLUG), issue)) == 1

            # A "request changes" review continues the same session, on the same PR.
            fake.submit_review(str(SLUG), pull.number, WRITER, forge.changes, ASKED)
            assert forge.deliver(port, forge.review(pull.number))[0] == 202
            assert wait_until(
                lambda: upstream.branches("app").get(ref) not in (None, first), timeout=180
            ), bot.stdout + bot.stderr
            second = upstream.branches("app")[ref]
            assert upstream.show("app", "show", f"{second}:NOTES.md").endswith("by the fleet")
            [again] = fake.pulls(str(SLUG))  # still the one pull request, at the new tip
            assert again.number == pull.number
            if forge.kind == "gitea":
                assert again.pull is not None and again.pull.head_sha == second
            assert wait_until(
                lambda: (
                    sum(
                        "is done" in c
                        for c in bot_comments(fake, SLUG, pull.number, forge.login, pull=True)
                    )
                    == 2
                ),
                timeout=60,
            )
            bot.command("forge", r"fw|acme/app#1")
            assert re.search(r"waiting|working", bot.output_since_command)

            # Merged and closed: the run ends, the branch is deleted, the checkout removed.
            fake.merge_pull(str(SLUG), pull.number, by=WRITER)
            assert forge.deliver(port, forge.closed(pull.number), "closed-1")[0] == 202
            assert wait_until(lambda: ref not in upstream.branches("app"), timeout=60), (
                bot.stdout + bot.stderr
            )
            ended(tmp_path, forge, "closed-1", pull.number)
            assert wait_until(lambda: not checkout.exists(), timeout=60)
            assert len(bot_comments(fake, SLUG, issue, forge.login)) == 1
            bot.command("forge all", r"ended")
            issue_is_one_task_done(tmp_path)
            assert token_anywhere(forge.pat, tmp_path / "state") == []
            assert token_anywhere(TOKEN, tmp_path / "state") == []
            assert forge.pat not in bot.stdout + bot.stderr
            bot.close()
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    # The review went on in the same conversation: the model saw the first turn's words.
    bodies = [r.raw.decode(errors="replace") for r in provider.requests]
    followed = [b for b in bodies if ASKED in b]
    assert followed and all("Done: the notes are written." in b for b in followed)
    assert not any(forge.pat in b or TOKEN in b for b in bodies)


def issue_is_one_task_done(tmp_path: Path) -> None:
    """The issue was one task: both runs bound to it, done, its actual their usage (the run
    is shown ended as soon as it is; its task follows a moment later)."""
    assert wait_until(
        lambda: (
            ledger_rows(tmp_path, "SELECT state FROM tasks WHERE source = 'forge'") == [("done",)]
        ),
        timeout=30,
    )
    [(task, state, actual)] = ledger_rows(
        tmp_path, "SELECT id, state, actual_tokens FROM tasks WHERE source = 'forge'"
    )
    bound = ledger_rows(tmp_path, "SELECT run_id FROM task_runs WHERE task_id = ?", task)
    runs = ledger_rows(tmp_path, "SELECT id FROM runs WHERE agent = 'coder'")
    assert state == "done" and sorted(bound) == sorted(runs) and len(runs) == 2
    [(metered,)] = ledger_rows(
        tmp_path,
        "SELECT SUM(input_tokens + output_tokens + cache_read_tokens"
        " + cache_write_tokens) FROM usage WHERE agent = 'coder'",
    )
    assert actual == metered > 0
