"""The git door against the fifth review's attacks, on a real heartbeat endpoint with real
git on both ends: a token anywhere in a commit (author, committer, an extra header written
with ``hash-object``, line 2,001 of a message, past column 4,096, a file's name) is
refused; so is a change to any forge's or CI service's pipeline, to what the base's
workflows run by reference and to the repository's own list; a commit whose tree the line
never had and the push did not carry (sent as a hand-made pack) is refused; a run's
checkout holds its base and nothing else; and a commit may not say who ran it, who
co-wrote it or which other issue it closes — while the agent's own ordinary commit, the
run's own issue and its requester as co-author go through."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fleet.repos.door.line_repo import LineRules, create_line_repo
from fleet.repos.hook.policy import Issue, agent_identity
from fleet.repos.line.checkouts import NewBranch, make_checkout
from tests.integration.repos.test_git_door import (
    REPO,
    Rig,
    basic,
    commit,
    git,
    refused_push,
)
from tests.integration.repos.test_git_door import git_door_rig as git_door_rig

pytestmark = pytest.mark.integration

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" + "K1l2M3n4O5p6Q7r8"  # split: no scanner of ours takes it
ME = agent_identity("alice", "local")
REQUESTER = "Ann Lee <ann@example.org>"
AS_ME = {
    "GIT_AUTHOR_NAME": ME.name,
    "GIT_AUTHOR_EMAIL": ME.email,
    "GIT_COMMITTER_NAME": ME.name,
    "GIT_COMMITTER_EMAIL": ME.email,
}


@pytest.fixture
async def door(git_door_rig: Rig) -> AsyncIterator[Rig]:
    """alice's line as a forge run on acme/app#5 makes it: her identity, her requester,
    her issue, the repository's own CI list; and a clone of it committing as her."""
    await line_policy(git_door_rig)
    yield git_door_rig


async def line_policy(rig: Rig, *, ci_paths: tuple[str, ...] = ("scripts/ci/",)) -> None:
    await create_line_repo(
        rig.lines["alice"],
        rig.mirror,
        branch="fw/alice/1",
        base_ref="main",
        start_sha=rig.base_sha,
        agent="alice",
        repo=REPO,
        hooks_dir=rig.hooks,
        rules=LineRules(
            workflows=False,
            ci_paths=ci_paths,
            identity=ME,
            co_author=REQUESTER,
            issue=Issue("acme/app", 5),
        ),
    )


async def clone_as_me(rig: Rig, name: str = "clone-alice") -> Path:
    clone = await rig.clone("alice", name)
    await git("config", "user.name", ME.name, cwd=clone)
    await git("config", "user.email", ME.email, cwd=clone)
    return clone


async def agit(*args: str, cwd: Path, check: bool = True) -> str:
    """git as the agent, its identity from its checkout's config only."""
    return (await git(*args, cwd=cwd, env=AS_ME, check=check)).out.strip()


async def my_commit(clone: Path, files: dict[str, str], message: str = "work") -> str:
    for name, text in files.items():
        path = clone / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    await agit("add", "-A", cwd=clone)
    proc = await asyncio.create_subprocess_exec(
        "git",
        "commit",
        "-q",
        "--allow-empty",
        "-F",
        "-",
        cwd=clone,
        env={**os.environ, **AS_ME, "GIT_CONFIG_GLOBAL": "/dev/null"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate(message.encode())
    assert proc.returncode == 0, err
    return await agit("rev-parse", "HEAD", cwd=clone)


async def refused_for(rig: Rig, clone: Path, *args: str, kinds: list[str]) -> str:
    """Push ``args``: refused for ``kinds`` (in order), the line repo as it was, no part of
    the token in what the agent reads or what the door records. What the agent read."""
    err = await refused_push(rig, clone, *args, kind=kinds)
    for text in (err, repr(rig.refused[-1][2])):
        assert TOKEN not in text and TOKEN[4:20] not in text and TOKEN[-16:] not in text
    return err


# -- every byte of a commit is scanned ---------------------------------------------------------


async def test_a_token_in_the_author_or_committer_is_refused_never_shown(door: Rig) -> None:
    clone = await clone_as_me(door)
    await commit(clone, {"a.txt": "a\n"})  # made by "Agent": not alice either
    env = {"GIT_AUTHOR_NAME": f"x {TOKEN}", "GIT_COMMITTER_EMAIL": f"{TOKEN}@example.org"}
    await git("commit", "-q", "--amend", "--no-edit", "--reset-author", cwd=clone, env=env)
    err = await refused_for(door, clone, "origin", "HEAD:fw/alice/1", kinds=["secret", "identity"])
    assert "(commit header)" in err
    assert "its author is x [secret]" in err  # the identity refusal too, masked
    assert f"Commit as yourself, {ME.line()}" in err
    assert "git rebase -r --exec 'git commit --amend --no-edit --reset-author' origin/main" in err


async def test_a_token_in_a_header_written_by_hand_is_refused(door: Rig) -> None:
    clone = await clone_as_me(door)
    await my_commit(clone, {"a.txt": "a\n"})
    raw = await agit("cat-file", "commit", "HEAD", cwd=clone)
    head, _, message = raw.partition("\n\n")
    forged = f"{head}\nx-note {TOKEN}\n\n{message}\n"
    proc = await asyncio.create_subprocess_exec(
        "git",
        "hash-object",
        "-t",
        "commit",
        "-w",
        "--stdin",
        cwd=clone,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(forged.encode())
    sha = out.decode().strip()
    assert len(sha) == 40
    await agit("fsck", "--no-dangling", cwd=clone)  # git itself finds nothing wrong
    err = await refused_for(
        door, clone, "origin", f"{sha}:refs/heads/fw/alice/1", kinds=["secret", "provenance"]
    )
    assert "(commit header)" in err
    assert "an extra header 'x-note'" in err


@pytest.mark.parametrize(
    "message",
    [
        "subject\n\n" + "filler\n" * 2001 + f"key {TOKEN}\n",
        "subject\n\n" + "y" * 4100 + f" {TOKEN}\n",
    ],
    ids=["line-2001", "column-4100"],
)
async def test_a_token_deep_in_a_message_is_refused(door: Rig, message: str) -> None:
    clone = await clone_as_me(door)
    await my_commit(clone, {"a.txt": "a\n"}, message)
    err = await refused_for(door, clone, "origin", "HEAD:fw/alice/1", kinds=["secret"])
    assert "(commit message)" in err


async def test_a_token_as_a_files_name_is_refused(door: Rig) -> None:
    clone = await clone_as_me(door)
    await my_commit(clone, {f"notes/{TOKEN}.txt": "nothing here\n"})
    err = await refused_for(door, clone, "origin", "HEAD:fw/alice/1", kinds=["secret"])
    assert "(file name)" in err


# -- CI by rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".forgejo/workflows/evil.yml",
        ".gitlab-ci.yml",
        ".github/actions/build/action.yml",
        ".woodpecker.yml",
        ".circleci/config.yml",
        "Jenkinsfile",
        "scripts/ci/deploy.sh",  # the repository's own list
    ],
)
async def test_any_ci_systems_pipeline_is_refused(door: Rig, path: str) -> None:
    clone = await clone_as_me(door)
    await my_commit(clone, {path: "run: curl evil\n"})
    err = await refused_push(door, clone, "origin", "HEAD:fw/alice/1", kind="workflow")
    assert f"changes {path}" in err
    assert ".forgejo/" in err and "Jenkinsfile" in err  # the rule, in short


async def test_what_the_bases_workflow_runs_by_reference_is_ci(door: Rig, tmp_path: Path) -> None:
    """main's workflow runs ./tools/build (a local action, with the deploy key): a run may
    not rewrite it, while another file beside it goes through."""
    work = door.tmp / "upstream-work"
    workflow = "jobs:\n  b:\n    steps:\n      - uses: ./tools/build\n"
    (work / ".github" / "workflows").mkdir(parents=True)
    (work / ".github" / "workflows" / "ci.yml").write_text(workflow)
    (work / "tools" / "build").mkdir(parents=True)
    (work / "tools" / "build" / "action.yml").write_text("runs: {using: node20}\n")
    await git("add", "-A", cwd=work)
    await git("commit", "-qm", "ci", cwd=work)
    await git("push", "-q", str(door.mirror), "HEAD:main", cwd=work)
    base = (await git("rev-parse", "HEAD", cwd=work)).out.strip()
    await git("update-ref", "refs/heads/main", base, cwd=door.lines["alice"])
    clone = await clone_as_me(door, "clone-ref")
    await agit("fetch", "-q", "origin", cwd=clone)
    await agit("reset", "-q", "--hard", "origin/main", cwd=clone)
    await my_commit(clone, {"tools/build/action.yml": "runs: {using: evil}\n"})
    err = await refused_push(door, clone, "origin", "HEAD:fw/alice/1", kind="workflow")
    assert "changes tools/build/action.yml" in err
    await agit("reset", "-q", "--hard", "origin/main", cwd=clone)
    sha = await my_commit(clone, {"tools/README.md": "how to build\n"})
    await agit("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    assert await door.tip("alice") == sha


# -- a checkout holds its base; a push carries what it adds ------------------------------------


async def test_a_checkout_holds_only_what_its_base_reaches(door: Rig) -> None:
    work = await private_branch(door)
    blob = (await git("rev-parse", "HEAD:secret-plan.txt", cwd=work)).out.strip()
    checkout = door.tmp / "checkout"
    await make_checkout(
        door.mirror,
        checkout,
        NewBranch(
            base_ref="main",
            branch="fw/alice/9",
            origin_url=door.url("alice", door.token("alice")),
            identity=ME,
        ),
    )
    listed = await git(
        "cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=checkout
    )
    assert blob not in listed.out
    assert (await git("config", "user.email", cwd=checkout)).out.strip() == ME.email
    assert (await git("config", "user.name", cwd=checkout)).out.strip() == ME.name


async def test_a_commit_naming_a_tree_the_line_never_had_is_refused(door: Rig) -> None:
    """The agent knows another branch's tree id (a forge read shows it) and sends a pack
    holding only a commit of that tree: git's own checks pass (the mirror, borrowed, has
    the tree), the door does not."""
    work = await private_branch(door)
    tree = (await git("rev-parse", "HEAD^{tree}", cwd=work)).out.strip()
    forged = (
        f"tree {tree}\nparent {door.base_sha}\n"
        f"author {ME.line()} 1700000000 +0000\ncommitter {ME.line()} 1700000000 +0000\n\n"
        "my work\n"
    ).encode()
    sha = (await piped(work, forged, "hash-object", "-t", "commit", "-w", "--stdin")).decode()
    pack = await piped(work, f"{sha.strip()}\n".encode(), "pack-objects", "--stdout")
    sha = sha.strip()
    said = await refused_pack(door, sha, pack)
    assert "pre-receive hook declined" in said, said


async def refused_pack(door: Rig, sha: str, pack: bytes) -> str:
    """``pack`` sent by hand to alice's ``git-receive-pack`` as a new branch at ``sha``: it
    must be refused as content the line never had, the line repo as it was. What git said."""
    before = await door.refs("alice")
    line = f"{'0' * 40} {sha} refs/heads/fw/alice/1\0report-status\n".encode()
    body = f"{len(line) + 4:04x}".encode() + line + b"0000" + pack
    url = f"http://127.0.0.1:{door.server.port}/git/alice/{REPO}.git/git-receive-pack"
    headers = {
        "Authorization": basic("alice", door.token("alice")),
        "Content-Type": "application/x-git-receive-pack-request",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers=headers) as reply,
    ):
        said = (await reply.read()).decode("utf-8", errors="replace")
    assert "ng refs/heads/fw/alice/1" in said, said
    assert await door.refs("alice") == before
    assert [r["kind"] for r in door.refused[-1][2]] == ["object"]
    return said


async def private_branch(door: Rig) -> Path:
    """An upstream branch only the mirror has (``private``, with ``secret-plan.txt``); the
    upstream's work tree, on it."""
    work = door.tmp / "upstream-work"
    await git("checkout", "-qb", "private", cwd=work)
    (work / "secret-plan.txt").write_text("the private branch's content\n")
    await git("add", "-A", cwd=work)
    await git("commit", "-qm", "private", cwd=work)
    await git("push", "-q", str(door.mirror), "private", cwd=work)
    return work


async def piped(cwd: Path, data: bytes, *args: str) -> bytes:
    """What ``git ARGS`` prints with ``data`` on its stdin (raw bytes)."""
    done = await asyncio.to_thread(
        subprocess.run, ["git", *args], cwd=cwd, input=data, capture_output=True, check=True
    )
    return done.stdout


# -- provenance cannot be forged ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "shows"),
    [
        ("Fixes acme/app#99\n", "acme/app#99"),
        ("fix the parser\n\nCloses #99\n", "#99"),
        ("work\n\nFleetwarden-Run: 999\n", "Fleetwarden-Run: 999"),
        ("work\n\nFleetwarden-Agent: release-bot\n", "Fleetwarden-Agent: release-bot"),
        ("work\n\nCo-authored-by: Bob <bob@example.org>\n", "Co-authored-by: Bob"),
    ],
)
async def test_a_commit_may_not_state_provenance_it_does_not_have(
    door: Rig, message: str, shows: str
) -> None:
    clone = await clone_as_me(door)
    await my_commit(clone, {"a.txt": "a\n"}, message)
    err = await refused_push(door, clone, "origin", "HEAD:fw/alice/1", kind="provenance")
    assert shows in err
    assert "Then push again." in err
    if ":" in shows:  # a trailer: the one it may keep is said with the fix
        assert f"Co-authored-by: {REQUESTER}" in err


async def test_an_author_posing_as_someone_else_is_refused(door: Rig) -> None:
    clone = await clone_as_me(door)
    env = {**AS_ME, "GIT_AUTHOR_NAME": "Ann Lee", "GIT_AUTHOR_EMAIL": "ann@example.org"}
    (clone / "a.txt").write_text("a\n")
    await agit("add", "-A", cwd=clone)
    await git("commit", "-qm", "work", cwd=clone, env=env)
    err = await refused_push(door, clone, "origin", "HEAD:fw/alice/1", kind="identity")
    assert "its author is Ann Lee <ann@example.org>" in err


async def test_the_agents_own_commit_its_issue_and_its_requester_go_through(door: Rig) -> None:
    clone = await clone_as_me(door)
    message = f"Parse the header\n\nFixes #5, see acme/app#5.\n\nCo-authored-by: {REQUESTER}\n"
    sha = await my_commit(clone, {"src/parse.py": "def parse(): ...\n"}, message)
    await agit("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    assert await door.tip("alice") == sha
    assert door.refused == []


def _packed(kind: int, body: bytes, base: bytes = b"") -> bytes:
    """One pack entry: its type and size header, a REF_DELTA's base id, the zlib body."""
    size, first = len(body), (kind << 4) | (len(body) & 15)
    size >>= 4
    head = bytearray()
    while size:
        head.append(first | 0x80)
        first, size = size & 0x7F, size >> 7
    head.append(first)
    return bytes(head) + base + zlib.compress(body)


def _oid(kind: str, body: bytes) -> bytes:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).digest()


async def test_a_thin_pack_cannot_borrow_another_branchs_blob(door: Rig) -> None:
    """A hand-made pack of over a hundred objects (so git fixes it as a thin pack, copying
    an outside delta base into the push whole) whose tree names another upstream branch's
    blob, with a delta against that blob: the blob seems carried, yet came from the
    mirror. Refused; the line repo as it was."""
    work = await private_branch(door)
    secret = bytes.fromhex((await git("rev-parse", "HEAD:secret-plan.txt", cwd=work)).out.strip())
    raw_tree = await piped(door.mirror, b"", "cat-file", "tree", f"{door.base_sha}^{{tree}}")
    assert raw_tree  # the base has files: the new tree keeps them and adds the leak
    tree = raw_tree + b"100644 zz-leak.txt\0" + secret
    ident = ME.line().encode() + b" 1700000000 +0000"
    commit = (
        b"tree " + _oid("tree", tree).hex().encode() + b"\nparent " + door.base_sha.encode()
        + b"\nauthor " + ident + b"\ncommitter " + ident + b"\n\nmy notes\n"
    )  # fmt: skip
    size = len(b"the private branch's content\n")
    delta = bytes([size, size + 2, 0x80 | 0x10, size, 2]) + b"!\n"
    entries = [_packed(1, commit), _packed(2, tree), _packed(7, delta, base=secret)]
    entries += [_packed(3, f"pad {n}\n".encode()) for n in range(120)]
    pack = b"PACK" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    pack += hashlib.sha1(pack).digest()
    said = await refused_pack(door, _oid("commit", commit).hex(), pack)
    assert "unpack ok" in said, said  # git's own checks pass: the door refuses
    assert "zz-leak.txt" in door.refused[-1][2][0]["why"], door.refused


@pytest.mark.parametrize("padding", [0, 120])
async def test_a_delta_against_another_branchs_blob_cannot_make_a_file_of_it(
    door: Rig, padding: int
) -> None:
    """A hand-made pack whose tree names no outside object, only a new blob made by a
    delta against another upstream branch's blob (its content and two bytes more): the
    new file would be that branch's content. Refused, small pack or large."""
    work = await private_branch(door)
    secret = bytes.fromhex((await git("rev-parse", "HEAD:secret-plan.txt", cwd=work)).out.strip())
    content = b"the private branch's content\n"
    raw_tree = await piped(door.mirror, b"", "cat-file", "tree", f"{door.base_sha}^{{tree}}")
    tree = raw_tree + b"100644 zz-leak.txt\0" + _oid("blob", content + b"!\n")
    ident = ME.line().encode() + b" 1700000000 +0000"
    commit = (
        b"tree " + _oid("tree", tree).hex().encode() + b"\nparent " + door.base_sha.encode()
        + b"\nauthor " + ident + b"\ncommitter " + ident + b"\n\nmy notes\n"
    )  # fmt: skip
    size = len(content)
    delta = bytes([size, size + 2, 0x80 | 0x10, size, 2]) + b"!\n"
    entries = [_packed(1, commit), _packed(2, tree), _packed(7, delta, base=secret)]
    entries += [_packed(3, f"pad {n}\n".encode()) for n in range(padding)]
    pack = b"PACK" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    pack += hashlib.sha1(pack).digest()
    said = await refused_pack(door, _oid("commit", commit).hex(), pack)
    assert "unpack ok" in said, said
    assert "a delta's base" in door.refused[-1][2][0]["why"], door.refused


async def test_a_file_the_push_sends_whole_is_its_own_though_another_branch_holds_it(
    door: Rig,
) -> None:
    """A new file whose content matches another upstream branch's file (two agents adding
    the same small file), sent whole by git's own client: it goes through."""
    await private_branch(door)
    clone = await clone_as_me(door)
    sha = await my_commit(clone, {"notes/plan.txt": "the private branch's content\n"})
    await agit("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    assert await door.tip("alice") == sha
    assert door.refused == []


async def test_a_token_as_a_name_git_lists_cut_or_a_rename_is_refused(door: Rig) -> None:
    """A name git's listing cuts at its newline, and an old file renamed to a token (no new
    blob, no added line): every name of every new tree is read."""
    clone = await clone_as_me(door)
    await my_commit(clone, {f"notes\n{TOKEN}": "x"})
    await refused_for(door, clone, "origin", "HEAD:fw/alice/1", kinds=["secret"])
    await agit("reset", "-q", "--hard", "HEAD~1", cwd=clone)
    await agit("mv", "README.md", TOKEN, cwd=clone)
    await agit("commit", "-qm", "rename", cwd=clone)
    err = await refused_for(door, clone, "origin", "HEAD:fw/alice/1", kinds=["secret"])
    assert "(file name)" in err
