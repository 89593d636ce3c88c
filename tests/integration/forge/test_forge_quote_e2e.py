"""A forge's ``quote_under:`` end to end, on every forge kind — GitHub and Gitea, each a
strict fake held to its own published API description — through the real ``fleetwarden
run`` and a real git upstream: an issue given to an agent with no quote in dollars is not
started — its status comment says why and how to go ahead, nothing of its branch is cut —
and stays queued on its issue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import sandbox_need
from tests.fakes import gitea_api, github_api
from tests.fakes.gitea_payloads import issue_event
from tests.fakes.webhook_sender import gitea_delivery, github_delivery, github_issue
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    bot_comments,
    command_bot_on_github,
    ledger_rows,
    post,
)

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_quotedUpstreamTokenNoAgentHolds1234567"  # the git upstream's
SECRET = b"quoted-webhook-secret-0123456789abcdef"
LABEL = "fleetwarden:coder"
WORK = "fw-forge done ok 'Nothing to do.'\n"
CONFIG = (
    APP_ON_GITHUB.replace("    login: {login}\n", "    login: {login}\n    quote_under: 0.50\n")
    + """\
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, {script}]
"""
)
WHY = (
    "not started: coder has no quote in dollars (no earlier run on command (its default "
    "model) to quote from), so it cannot be kept under its quote_under $0.50: give coder "
    "`run_budget: {max_usd: 0.50}` (at most the limit) instead, and the cap is its quote"
)


@dataclass(frozen=True)
class Forge:
    """One forge kind: its fake, its name in the config, Fleetwarden's login and token on
    it, and how it words and signs a writer's labelling of an issue."""

    kind: str
    name: str
    fake: Any  # FakeGitHub or FakeGitea: the same verbs, each in its forge's shapes
    login: str
    pat: str

    def labelled(self, issue: int) -> tuple[dict[str, str], bytes]:
        """The signed delivery telling that :data:`WRITER` gave ``issue`` :data:`LABEL`."""
        if self.kind == "github":
            event = github_issue(
                "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER, label=LABEL
            )
            return github_delivery(*event, secret=SECRET)
        name, payload = issue_event(
            "label_updated", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
            labels=[LABEL],
        )  # fmt: skip
        return gitea_delivery(name, payload, secret=SECRET)

    def config(self) -> str:
        """:data:`CONFIG` with its forge of this kind."""
        if self.kind == "github":
            return CONFIG
        return CONFIG.replace("  gh:\n    kind: github\n", "  tea:\n    kind: gitea\n").replace(
            "    forge: gh\n", "    forge: tea\n"
        )


@pytest.fixture(params=["github", "gitea"])
def forge(request: pytest.FixtureRequest, upstream: GitUpstream) -> Iterator[Forge]:
    """Each forge kind's strict fake with ``acme/app`` on the upstream, :data:`WRITER` a
    writer on it; no violation of its API when it stops."""
    if request.param == "github":
        fake = request.getfixturevalue("github")
        yield Forge("github", "gh", fake, github_api.BOT_LOGIN, github_api.DEFAULT_PAT)
        return
    with gitea_api.fake_gitea_thread() as fake:
        fake.add_repo(str(SLUG))
        fake.link_git(str(SLUG), upstream.root / "app.git")
        fake.add_collaborator(str(SLUG), WRITER, "write")
        # Gitea shows another user's permission only to a repository admin.
        fake.add_collaborator(str(SLUG), gitea_api.BOT_LOGIN, "admin")
        yield Forge("gitea", "tea", fake, gitea_api.BOT_LOGIN, gitea_api.GITEA_TOKEN)
        assert fake.violations == []


@pytest.fixture
def bot(tmp_path: Path, upstream: GitUpstream, forge: Forge) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run`` on :data:`CONFIG` with ``forge``, listening."""
    tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": forge.pat, "FORGE_HOOK_SECRET": SECRET.decode()}
    with command_bot_on_github(
        tmp_path, forge.config(), WORK, upstream, forge.fake, tokens, login=forge.login
    ) as running:
        yield running


def run_of(tmp_path: Path, issue: int) -> tuple[str, str] | None:
    """The state and summary of the newest forge run on ``issue``."""
    sql = "SELECT state, COALESCE(summary, '') FROM forge_runs WHERE issue = ? ORDER BY id DESC"
    rows = ledger_rows(tmp_path, sql, issue)
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def test_an_issue_over_the_forges_quote_under_is_not_started_and_says_why(
    tmp_path: Path, upstream: GitUpstream, forge: Forge, bot: tuple[ConsoleBot, int]
) -> None:
    """Labelled on either forge, an issue for an agent with no quote in dollars is queued
    on it, saying why on the issue, and nothing of its run starts."""
    console, port = bot
    issue = forge.fake.add_issue(str(SLUG), "Write the release notes", "Say when.",
                                 author=WRITER, labels=[LABEL])  # fmt: skip
    headers, body = forge.labelled(issue)
    assert post(port, forge.name, headers, body)[0] == 202

    assert wait_until(lambda: run_of(tmp_path, issue) == ("queued", WHY), timeout=60), (
        run_of(tmp_path, issue),
        console.stdout + console.stderr,
    )

    def comment() -> str:
        comments = bot_comments(forge.fake, SLUG, issue, forge.login)
        return comments[0] if comments else ""

    assert wait_until(lambda: "coder has no quote in dollars" in comment(), timeout=30)
    shown = WHY.replace("_", "\\_").replace("$", "\\$").replace("`", "\\`")
    assert f"Why: {shown}" in comment()  # escaped as markdown, as every summary is
    assert f"refs/heads/fw/coder/issue-{issue}" not in upstream.branches("app")
    assert ledger_rows(tmp_path, "SELECT id FROM runs WHERE agent = 'coder'") == []
    assert console.close() == 0
