"""``merge`` from chat of a forge run's open merge request on GitLab, end to end through the
real ``fleetwarden run`` on the strict fake GitLab and a real git upstream: the merge is
GitLab's, of the head Fleetwarden pushed (its ``sha`` guard). A head moved since (a
teammate's push) is refused — said in chat, nothing merged, the draft left as it is; at the
pushed head the draft is lifted and the merge request merged, and GitLab's news of it ends
the run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.gitlab.hooks import gitlab_delivery, gitlab_merge_request
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.kinds import Forge
from tests.integration.forge_rig import CODER_ON_APP, ledger_rows, post

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_gitlabMergeUpstreamTokenNoAgentHolds1"  # the git upstream's
SECRET = b"gitlab-merge-webhook-secret-0123456789ab"
BRANCH = "fw/coder/issue-1"
# The agent: commits, pushes through its git door, says done and exits.
WORK = """
printf 'shipped on Friday\\n' > NOTES.md
git add NOTES.md && git commit -qm 'Write the release notes'
git push -q origin HEAD
fw-forge done ok 'Did what was asked.'
"""
CONFIG = CODER_ON_APP
LABEL = "fleetwarden:coder"


@pytest.mark.parametrize("forge_kind", ["gitlab"], indirect=True)
def test_merge_from_chat_is_gitlabs_merge_of_the_pushed_head(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge, forge_bot: tuple[ConsoleBot, int]
) -> None:
    (console, port), forge = forge_bot, forge_kind
    fake = forge.fake
    issue = fake.add_issue(str(SLUG), "Write the release notes", "Say when.", author=WRITER,
                           labels=[LABEL])  # fmt: skip
    assert post(port, forge.name, *forge.labelled(issue, LABEL, SECRET))[0] == 202
    assert wait_until(lambda: len(fake.pulls(str(SLUG))) == 1, timeout=120), console.stdout
    [pull] = fake.pulls(str(SLUG))
    assert pull.draft and pull.title.startswith("Draft: ")
    pushed = upstream.branches("app")[f"refs/heads/{BRANCH}"]
    ended = "SELECT state FROM forge_runs"
    assert wait_until(lambda: ledger_rows(tmp_path, ended) == [("waiting",)], timeout=60)

    # A teammate pushes to the branch: GitLab's guard refuses the merge of what was shown.
    upstream.commit("app", {"THEIRS.md": "theirs\n"}, branch=BRANCH)
    console.command("merge coder", r"did not merge coder's merge request")
    assert f"not {pushed[:12]}, the head Fleetwarden pushed" in console.output_since_command
    assert "Nothing was merged." in console.output_since_command
    # Nothing lifted either: the draft stays a draft at the head no one approved.
    assert fake.gitlab.mr(str(SLUG), pull.number).state == "opened"
    assert fake.gitlab.is_draft(str(SLUG), pull.number)

    # The branch back at the pushed head: merged by GitLab at that head, the draft lifted.
    bare = upstream.root / "app.git"
    subprocess.run(["git", "update-ref", f"refs/heads/{BRANCH}", pushed], cwd=bare, check=True)
    console.command("merge coder", r"merged coder's merge request .* at " + pushed[:12])
    merged = fake.gitlab.mr(str(SLUG), pull.number)
    assert (merged.state, merged.draft, merged.merged_by) == ("merged", False, forge.login)
    assert fake.gitlab.branches(str(SLUG)).get(BRANCH) in (pushed, None)

    # GitLab tells of the merge: the run ends as any merge on the forge ends it.
    event = gitlab_merge_request(
        "merge", repo=SLUG, number=pull.number, sender=forge.login, source_branch=BRANCH
    )
    assert post(port, forge.name, *gitlab_delivery(*event, token=SECRET.decode()))[0] == 202
    assert wait_until(lambda: ledger_rows(tmp_path, ended) == [("ended",)], timeout=60), (
        console.stdout + console.stderr
    )
    assert console.close() == 0
