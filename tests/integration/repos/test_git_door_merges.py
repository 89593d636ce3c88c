"""The git door against what a merge commit, a binary file or a commit message could hide:
a merge with a commit the line never had is refused; a push whose commits each leave a CI
workflow alone but whose whole change does not is refused; a secret in a binary file or in
a commit message is refused like one in a text file."""

from __future__ import annotations

import pytest

from fleet.repos.door.line_repo import set_base
from tests import sandbox_need
from tests.integration.repos.test_git_door import (
    AWS_FILE,
    AWS_ID,
    Rig,
    commit,
    git,
    git_door_rig,
    refused_push,
)

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]
__all__ = ["git_door_rig"]


async def test_a_merge_with_a_commit_the_line_never_had_is_refused(git_door_rig: Rig) -> None:
    work = git_door_rig.tmp / "upstream-work"
    await git("checkout", "-q", "-b", "private", cwd=work)
    hidden = await commit(work, {"private.txt": "not for this run\n"}, "private")
    await git("push", "-q", str(git_door_rig.mirror), "private", cwd=work)
    clone = await git_door_rig.clone("alice")
    await commit(clone, {"mine.txt": "mine\n"})
    await git("fetch", "-q", str(work), "private", cwd=clone)  # however it came by it
    await git("merge", "-q", "--no-edit", "FETCH_HEAD", cwd=clone)
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="ref")
    assert "never had" in err and hidden[:12] in err, err


async def test_a_workflow_undone_through_a_merge_is_refused(git_door_rig: Rig) -> None:
    work = git_door_rig.tmp / "upstream-work"
    await commit(work, {".github/workflows/ci.yml": "on: push\n"}, "ci")
    await git("push", "-q", str(git_door_rig.mirror), "main", cwd=work)
    moved = (await git("rev-parse", "HEAD", cwd=work)).out.strip()
    await set_base(git_door_rig.lines["alice"], "main", moved)
    clone = await git_door_rig.clone("alice")
    await git("fetch", "-q", "origin", cwd=clone)
    await git("merge", "-q", "--ff-only", "origin/main", cwd=clone)
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)  # the base: taken
    # A side commit cut before the workflow existed, merged with its tree taken whole.
    await git("checkout", "-q", "-b", "side", git_door_rig.base_sha, cwd=clone)
    side = await commit(clone, {"side.txt": "side\n"}, "side")
    await git("checkout", "-q", "fw/alice/1", cwd=clone)
    await git("merge", "-q", "--no-commit", "--no-ff", side, cwd=clone, check=False)
    await git("read-tree", "-u", "--reset", side, cwd=clone)
    await git("commit", "-qm", "merge side", cwd=clone)
    assert not (clone / ".github" / "workflows" / "ci.yml").exists()
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="workflow")
    assert ".github/workflows/ci.yml" in err


async def test_a_secret_in_a_binary_file_or_a_commit_message_is_refused(git_door_rig: Rig) -> None:
    clone = await git_door_rig.clone("alice")
    (clone / "blob.bin").write_bytes(b"\x00\x01binary\n" + AWS_FILE.encode())
    await git("add", "blob.bin", cwd=clone)
    await git("commit", "-qm", "a binary", cwd=clone)
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="secret")
    assert "blob.bin" in err and AWS_ID not in err
    await git("reset", "-q", "--hard", "HEAD~1", cwd=clone)
    await commit(clone, {"notes.txt": "notes\n"}, f"notes\n\naws_access_key_id = {AWS_ID}\n")
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="secret")
    assert "(commit message)" in err and AWS_ID not in err
