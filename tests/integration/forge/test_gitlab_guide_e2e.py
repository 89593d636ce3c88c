"""The GitLab walk of ``docs/forges.md``, as a new user follows it, on the strict fake GitLab
and a real git upstream that takes GitLab's convention (any user, the token as password):
the guide's own config (its variables, its forge's name, its webhook path) passes
``check-config --online``; ``fleetwarden run`` takes the label, opens the draft merge
request, a note on it continues the run, and ``merge coder`` in chat has GitLab merge it,
which ends the run.

What is not the guide's, and why: the addresses (the fake's API, the upstream — whose url names no
group, so ``forge_repo`` is given — a free port for the dashboard) and the agent — a ``command``
agent that commits, pushes and says done, since the walk runs with no key; ``runtime: claude`` is
walked in ``test_forge_kinds_e2e.py``."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.ledger.records.forge import Slug
from tests import sandbox_need
from tests.fakes.gitlab.api import BOT_LOGIN, GITLAB_TOKEN, FakeGitLab, fake_gitlab_thread
from tests.fakes.gitlab.hooks import (
    gitlab_delivery,
    gitlab_issue,
    gitlab_merge_request,
    gitlab_note,
)
from tests.fakes.gitlab.state import DEVELOPER
from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env, wait_until
from tests.integration.forge_rig import ledger_rows, listening, post
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

HOOK = "a-long-random-secret-of-the-operators-0123"
WORK = (
    "if [ -f NOTES.md ]; then echo more >> NOTES.md; else echo 'shipped' > NOTES.md; fi; "
    "git add NOTES.md && git commit -qm 'Write the release notes' && git push -q origin HEAD "
    "&& fw-forge done ok 'Did what was asked.'"
)
REPO = "acme/app"
SLUG = Slug.parse(REPO)
ROOT = Path(__file__).resolve().parents[3]


def guide_config() -> str:
    """The config block of the guide's GitLab walk, as written."""
    text = (ROOT / "docs" / "forges.md").read_text(encoding="utf8")
    section = text.split("## GitLab\n", 1)[1].split("\n## ", 1)[0]
    [config] = [b for b in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL) if "forges:" in b]
    return config


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with fake_gitlab_thread() as fake:
        fake.add_project(REPO)
        fake.add_member(REPO, BOT_LOGIN, DEVELOPER)  # the guide: Developer or higher
        fake.add_member(REPO, "wendy", DEVELOPER)
        yield fake
        assert fake.violations == []


def test_the_guides_gitlab_walk_ends_in_a_merged_merge_request(
    tmp_path: Path, gitlab: FakeGitLab
) -> None:
    with served_app(tmp_path / "up", GITLAB_TOKEN, any_user=True) as upstream:
        gitlab.link_git(REPO, upstream.root / "app.git")
        walk(tmp_path, gitlab, upstream)


def walk(tmp_path: Path, gitlab: FakeGitLab, upstream: GitUpstream) -> None:
    port = free_port()
    config = guide_config()
    assert "FLEETWARDEN_GITLAB_TOKEN" in config and "login: fleetwarden-bot" in config
    ours = config.replace("127.0.0.1:8750", f"127.0.0.1:{port}")
    ours = re.sub(r"# api_url: \S+.*", f"api_url: {gitlab.api_url}", ours)
    ours = ours.replace("https://gitlab.com/acme/app.git", upstream.url("app"))
    # The upstream's url names no group: its project path is said as the guide says a
    # subgroup's is.
    ours = re.sub(r"# forge_repo: \S+.*", "forge_repo: acme/app", ours)
    agent = f"{{name: coder, runtime: command, repo: app, argv: [sh, -c, {WORK!r}]}}"
    ours = re.sub(r"\{name: coder, runtime: claude, repo: app\}", lambda _: agent, ours)
    head = "state_dir: ./state\nconnectors:\n  console: {}\ndefaults:\n  stop_grace_seconds: 1\n"
    path = tmp_path / "fleetwarden.yaml"
    path.write_text(head + ours)
    env = clean_env(
        PATH=agent_path(), FLEETWARDEN_GITLAB_TOKEN=GITLAB_TOKEN, FLEETWARDEN_GITLAB_HOOK=HOOK
    )
    # 3. Check it.
    checked = subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(path), "--online"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"127.0.0.1:{port}/webhooks/gitlab" in checked.stdout
    assert GITLAB_TOKEN not in checked.stdout + checked.stderr
    # 4.-5. The webhook, and the loop.
    with ConsoleBot(tmp_path, "--config", str(path), env=env) as bot:
        assert wait_until(lambda: listening(port), timeout=60), bot.stderr
        issue = gitlab.open_issue(REPO, "Fix the login page", "It fails.", author="wendy",
                                  labels=["fleetwarden:coder"])  # fmt: skip
        labelled = gitlab_issue(
            "update", repo=SLUG, number=issue, sender="wendy",
            labels=["fleetwarden:coder"], previous_labels=[],
        )  # fmt: skip
        assert post(port, "gitlab", *gitlab_delivery(*labelled, token=HOOK))[0] == 202
        assert wait_until(lambda: len(gitlab.mrs(REPO)) == 1, timeout=120), bot.stdout
        [mr] = gitlab.mrs(REPO)
        assert mr.title == "Draft: Fix the login page" and "Closes #1" in mr.description
        status = [n for n in gitlab.notes_on(REPO, issue) if n.author == BOT_LOGIN]
        assert len(status) == 1 and "<details>" in status[0].body  # one note, its footer
        first = mr.sha
        # A note on the merge request continues the run: a second commit on the same one.
        made = gitlab.add_note(REPO, mr.iid, "Say who shipped it.", author="wendy", pull=True)
        note = gitlab_note(
            repo=SLUG, number=mr.iid, sender="wendy", body="Say who shipped it.",
            on="MergeRequest", note_id=made, source_branch=mr.source_branch,
        )  # fmt: skip
        assert post(port, "gitlab", *gitlab_delivery(*note, token=HOOK))[0] == 202
        assert wait_until(lambda: gitlab.mr(REPO, mr.iid).sha != first, timeout=120), bot.stdout
        runs = "SELECT state FROM forge_runs"
        assert wait_until(lambda: ledger_rows(tmp_path, runs) == [("waiting",)], timeout=60)
        # Merged from chat: GitLab merges the head Fleetwarden pushed.
        bot.command("merge coder", r"merged coder's merge request")
        assert gitlab.mr(REPO, mr.iid).state == "merged"
        merged = gitlab_merge_request(
            "merge", repo=SLUG, number=mr.iid, sender=BOT_LOGIN,
            source_branch=mr.source_branch,
        )  # fmt: skip
        assert post(port, "gitlab", *gitlab_delivery(*merged, token=HOOK))[0] == 202
        assert wait_until(lambda: ledger_rows(tmp_path, runs) == [("ended",)], timeout=60)
        assert GITLAB_TOKEN not in bot.stdout + bot.stderr
        assert bot.close() == 0
