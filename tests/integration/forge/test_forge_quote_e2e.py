"""A forge's ``quote_under:`` end to end, on every forge kind — GitHub and Gitea, each a
strict fake held to its own published API description — through the real ``fleetwarden
run`` and a real git upstream: an issue given to an agent with no quote in dollars is not
started — its status comment says why and how to go ahead, nothing of its branch is cut —
and stays queued on its issue."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.kinds import Forge
from tests.integration.forge_rig import (
    CODER_ON_APP,
    bot_comments,
    ledger_rows,
    post,
)

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_quotedUpstreamTokenNoAgentHolds1234567"  # the git upstream's
SECRET = b"quoted-webhook-secret-0123456789abcdef"
LABEL = "fleetwarden:coder"
WORK = "fw-forge done ok 'Nothing to do.'\n"
CONFIG = CODER_ON_APP.replace("    login: {login}\n", "    login: {login}\n    quote_under: 0.50\n")
WHY = (
    "not started: coder has no quote in dollars (no earlier run on command (its default "
    "model) to quote from), so it cannot be kept under its quote_under $0.50: give coder "
    "`run_budget: {max_usd: 0.50}` (at most the limit) instead, and the cap is its quote"
)


def run_of(tmp_path: Path, issue: int) -> tuple[str, str] | None:
    """The state and summary of the newest forge run on ``issue``."""
    sql = "SELECT state, COALESCE(summary, '') FROM forge_runs WHERE issue = ? ORDER BY id DESC"
    rows = ledger_rows(tmp_path, sql, issue)
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def test_an_issue_over_the_forges_quote_under_is_not_started_and_says_why(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge, forge_bot: tuple[ConsoleBot, int]
) -> None:
    """Labelled on either forge, an issue for an agent with no quote in dollars is queued
    on it, saying why on the issue, and nothing of its run starts."""
    (console, port), forge = forge_bot, forge_kind
    issue = forge.fake.add_issue(str(SLUG), "Write the release notes", "Say when.",
                                 author=WRITER, labels=[LABEL])  # fmt: skip
    headers, body = forge.labelled(issue, LABEL, SECRET)
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
