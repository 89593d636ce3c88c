"""A GitLab delivery's confidentiality, through the real ``fleetwarden run`` on the strict
fake GitLab: judged by the payload the hook's token vouches for, never by the unsigned
``X-Gitlab-Event`` header — a confidential issue's labelling renamed ``Issue Hook`` starts
nothing and reads nothing of it; a public issue's under a ``Confidential`` name starts its
run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.gitlab import api as gitlab_api
from tests.fakes.gitlab.hooks import gitlab_delivery, gitlab_issue
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import wait_until
from tests.integration.forge.gitlab_kind import GitLabForge, on_gitlab
from tests.integration.forge.test_forge_hostile import (
    LABEL_SLEEPER,
    SECRET,
    TOKEN,
    kill_left,
    sleeps,
    start_bot,
    write_config,
)
from tests.integration.forge_rig import ledger_rows, listening, post
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

__all__ = ["TOKEN"]  # the upstream's token, as start_bot gives it to the bot


@pytest.fixture
def gitlab(upstream: GitUpstream) -> Iterator[GitLabForge]:
    """The strict fake GitLab with ``acme/app`` on the upstream; no violation of its API."""
    upstream.any_user = True  # GitLab's git takes any user with the token
    with gitlab_api.fake_gitlab_thread() as lab:
        yield on_gitlab(lab, upstream.root / "app.git")
        assert lab.violations == []


def labelled(issue: int, *, confidential: bool, header: str) -> tuple[dict[str, str], bytes]:
    """The writer's labelling of ``issue`` as GitLab sends it (its payload saying
    ``confidential``), delivered under the event name ``header``."""
    _, payload = gitlab_issue(
        "update", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
        labels=[LABEL_SLEEPER], previous_labels=[], confidential=confidential,
    )  # fmt: skip
    return gitlab_delivery(header, payload, token=SECRET.decode(), delivery=f"issue-{issue}")


def test_confidentiality_is_the_payloads_not_the_headers(
    tmp_path: Path, upstream: GitUpstream, gitlab: GitLabForge
) -> None:
    """A confidential issue's label delivered as ``Issue Hook`` starts no run and has
    nothing of that issue read; a public issue's delivered as ``Confidential Issue Hook``
    starts its run."""
    lab = gitlab.fake.gitlab
    public = gitlab.fake.add_issue(
        str(SLUG), "Sleep on it", "Take your time.", labels=[LABEL_SLEEPER]
    )
    hidden = gitlab.fake.add_issue(
        str(SLUG), "The secret one", "Members only.", labels=[LABEL_SLEEPER]
    )
    lab.world.project(str(SLUG)).issues[hidden].confidential = True
    port = free_port()
    bot = start_bot(tmp_path, write_config(tmp_path, upstream, gitlab, port), gitlab)
    checkout = tmp_path / "state" / "checkouts" / "app" / f"sleeper-{public}"
    try:
        assert wait_until(lambda: listening(port), timeout=60), bot.stderr
        renamed = labelled(hidden, confidential=True, header="Issue Hook")
        assert post(port, gitlab.name, *renamed)[0] == 202
        named = labelled(public, confidential=False, header="Confidential Issue Hook")
        assert post(port, gitlab.name, *named)[0] == 202
        assert wait_until(lambda: len(sleeps(checkout)) == 1, timeout=60), bot.stdout + bot.stderr
        assert ledger_rows(tmp_path, "SELECT issue FROM forge_runs") == [(public,)]
        taken = "SELECT count(*) FROM forge_deliveries WHERE delivery NOT LIKE 'body:%'"
        assert ledger_rows(tmp_path, taken) == [(2,)]
        asked = [seen.path for seen in lab.requests if f"/issues/{hidden}" in seen.path]
        assert asked == [], asked  # neither its record nor its words were read
        assert gitlab.fake.comments_on(str(SLUG), hidden) == []
        bot.command("stop sleeper", r"[Ss]topped sleeper", timeout=30)
        assert wait_until(lambda: not sleeps(checkout), timeout=30)
        bot.close()
    finally:
        kill_left(checkout)
        if bot.proc.poll() is None:
            bot.kill()
