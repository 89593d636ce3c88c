"""The git door on a real heartbeat endpoint, with real git on both ends: an agent's clone
whose ``origin`` is the door (its heartbeat token as the password) fetches and pushes its
own branch, and every other push — to the base or another ref, forced, a delete, a tag, a
workflow change, a commit adding a secret (even one removed again), ``--receive-pack``
tricks — is refused with words the agent can act on, counted, and leaves the line repo as
it was; a wrong, missing or borrowed token gets nothing; and one agent cannot fetch what
another pushed, even by its sha."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from fleet.names import AgentName
from fleet.repos.door.line_repo import LineRules, create_line_repo, set_base, write_hooks
from fleet.repos.door.server import GitDoor
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.polling import eventually

pytestmark = pytest.mark.integration

REPO = "app"
AWS_ID = "AKIA" + "Q3EGRIYTEVSBJRNW"  # split so no scanner of this file's own takes it
AWS_SECRET = "hV7z" + "Q2m9kLx4Rb8TfWc1YpNa6JsDe3GuHo5Ki0Vt"
WHO = {
    "GIT_AUTHOR_NAME": "Agent",
    "GIT_AUTHOR_EMAIL": "agent@example.invalid",
    "GIT_COMMITTER_NAME": "Agent",
    "GIT_COMMITTER_EMAIL": "agent@example.invalid",
}


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def git(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, check: bool = True
) -> Ran:
    """Real git, as a client on this machine would run it (no user or system config)."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(cwd),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            **WHO,
            **(env or {}),
        },
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    ran = Ran(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and ran.code != 0:
        raise AssertionError(f"git {' '.join(args)} exited {ran.code}: {ran.err}")
    return ran


@dataclass
class Rig:
    tmp: Path
    server: HeartbeatServer
    mirror: Path
    hooks: Path
    lines: dict[str, Path]
    base_sha: str
    refused: list[tuple[str, str, list[dict[str, str]]]] = field(default_factory=list)

    def url(self, agent: str, token: str | None = None, user: str | None = None) -> str:
        auth = f"{user or agent}:{token}@" if token is not None else ""
        return f"http://{auth}127.0.0.1:{self.server.port}/git/{agent}/{REPO}.git"

    def token(self, agent: str) -> str:
        return self.server.token_for(agent)

    def branch(self, agent: str) -> str:
        return f"fw/{agent}/{1 if agent == 'alice' else 2}"

    async def clone(self, agent: str, name: str | None = None) -> Path:
        dest = self.tmp / (name or f"clone-{agent}")
        await git("clone", "-q", self.url(agent, self.token(agent)), str(dest), cwd=self.tmp)
        return dest

    async def tip(self, agent: str, branch: str | None = None) -> str:
        ref = f"refs/heads/{branch or self.branch(agent)}"
        return (await git("rev-parse", ref, cwd=self.lines[agent])).out.strip()

    async def refs(self, agent: str) -> str:
        return (await git("for-each-ref", cwd=self.lines[agent])).out


@pytest.fixture
async def git_door_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A mirror with one commit, line repos for alice and bob on it, and the door on a real
    heartbeat endpoint."""
    work = tmp_path / "upstream-work"
    work.mkdir()
    await git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("hello\n")
    (work / "app.py").write_text("print('hi')\n")
    await git("add", "-A", cwd=work)
    await git("commit", "-qm", "first", cwd=work)
    base_sha = (await git("rev-parse", "HEAD", cwd=work)).out.strip()
    repos = tmp_path / "state" / "repos"
    mirror = repos / REPO / "mirror.git"
    mirror.parent.mkdir(parents=True)
    await git("clone", "-q", "--bare", str(work), str(mirror), cwd=tmp_path)
    hooks = repos / ".hooks"
    write_hooks(hooks)
    lines = {
        "alice": repos / REPO / "lines" / "alice" / "1.git",
        "bob": repos / REPO / "lines" / "bob" / "2.git",
    }
    for agent, path in lines.items():
        await create_line_repo(
            path,
            mirror,
            branch=f"fw/{agent}/{path.stem}",
            base_ref="main",
            start_sha=base_sha,
            agent=agent,
            repo=REPO,
            hooks_dir=hooks,
            rules=LineRules(workflows=False),
        )
    refused: list[tuple[str, str, list[dict[str, str]]]] = []

    async def resolve(agent: AgentName, repo: str) -> Path | None:
        return lines.get(agent) if repo == REPO else None

    async def on_refusals(agent: AgentName, repo: str, found: list[dict[str, str]]) -> None:
        refused.append((agent, repo, found))

    async def on_beat(agent: str, kind: str) -> None:
        pass

    server = HeartbeatServer(tmp_path / "state" / "hb", on_beat, gits=GitDoor(resolve, on_refusals))
    await server.start()
    try:
        yield Rig(tmp_path, server, mirror, hooks, lines, base_sha, refused)
    finally:
        await server.stop()


async def commit(clone: Path, files: Mapping[str, str], message: str = "work") -> str:
    for name, text in files.items():
        path = clone / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    await git("add", "-A", cwd=clone)
    await git("commit", "-qm", message, cwd=clone)
    return (await git("rev-parse", "HEAD", cwd=clone)).out.strip()


async def refused_push(rig: Rig, clone: Path, *args: str, kind: str | list[str]) -> str:
    """Push ``args`` from ``clone``: it must be refused, leave alice's line repo as it was,
    and be counted once with ``kind`` (or the ``kind`` list, in order). What the agent
    read."""
    before = await rig.refs("alice")
    counted = len(rig.refused)
    ran = await git("push", *args, cwd=clone, check=False)
    assert ran.code != 0, ran.err
    assert "remote: Fleetwarden's git door refused this push" in ran.err, ran.err
    assert await rig.refs("alice") == before
    assert len(rig.refused) == counted + 1, rig.refused
    agent, repo, found = rig.refused[-1]
    assert (agent, repo) == ("alice", REPO)
    assert [r["kind"] for r in found] == ([kind] if isinstance(kind, str) else kind), found
    return ran.err


async def test_an_agent_pushes_its_own_branch_and_fetches_it_back(git_door_rig: Rig) -> None:
    clone = await git_door_rig.clone("alice")
    head = (await git("symbolic-ref", "HEAD", cwd=clone)).out.strip()
    assert head == "refs/heads/fw/alice/1"  # the line repo's HEAD is the line's branch
    sha = await commit(clone, {"app.py": "print('hello')\n"})
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    assert await git_door_rig.tip("alice") == sha
    assert await git_door_rig.tip("alice", "main") == git_door_rig.base_sha
    again = await commit(clone, {"more.txt": "more\n"})
    await git("push", "-q", "origin", "fw/alice/1", cwd=clone)
    assert await git_door_rig.tip("alice") == again
    other = await git_door_rig.clone("alice", "clone-alice-2")
    assert (await git("rev-parse", "HEAD", cwd=other)).out.strip() == again
    await git("fetch", "-q", "origin", cwd=clone)
    assert git_door_rig.refused == []
    # What was pushed stayed in alice's line repo: the mirror and bob's line have none of it.
    for where in (git_door_rig.mirror, git_door_rig.lines["bob"]):
        ran = await git("cat-file", "-e", f"{again}^{{commit}}", cwd=where, check=False)
        assert ran.code != 0


async def test_pushes_to_any_other_ref_are_refused(git_door_rig: Rig) -> None:
    clone = await git_door_rig.clone("alice")
    await commit(clone, {"app.py": "print('x')\n"})
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:main", kind="ref")
    assert "you may push only to your own branch, fw/alice/1" in err
    assert "git push origin HEAD:fw/alice/1" in err
    await refused_push(git_door_rig, clone, "origin", "HEAD:refs/heads/other", kind="ref")
    await refused_push(git_door_rig, clone, "origin", "HEAD:fw/bob/2", kind="ref")
    await refused_push(git_door_rig, clone, "origin", "HEAD:refs/notes/commits", kind="ref")
    assert git_door_rig.refused[0][2][0]["ref"] == "refs/heads/main"
    assert git_door_rig.refused[0][2][0]["why"] == "not its branch"


async def test_a_force_push_a_delete_and_a_tag_are_refused(git_door_rig: Rig) -> None:
    clone = await git_door_rig.clone("alice")
    await commit(clone, {"a.txt": "one\n"})
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    await git("reset", "-q", "--hard", "HEAD~1", cwd=clone)
    await commit(clone, {"b.txt": "two\n"})
    err = await refused_push(
        git_door_rig, clone, "--force", "origin", "HEAD:fw/alice/1", kind="force"
    )
    assert "not a fast-forward" in err and "git pull --rebase origin fw/alice/1" in err
    err = await refused_push(git_door_rig, clone, "origin", ":fw/alice/1", kind="delete")
    assert "deleting a branch is not allowed" in err
    await git("tag", "v1", cwd=clone)
    err = await refused_push(git_door_rig, clone, "origin", "v1", kind="tag")
    assert "tags are not taken here" in err
    await git("tag", "-a", "-m", "annotated", "v2", cwd=clone)
    await refused_push(git_door_rig, clone, "origin", "refs/tags/v2", kind="tag")


async def test_a_workflow_change_is_refused_unless_the_repository_allows_it(
    git_door_rig: Rig,
) -> None:
    clone = await git_door_rig.clone("alice")
    await commit(clone, {".github/workflows/x.yml": "on: push\n"}, "ci")
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="workflow")
    assert "changes .github/workflows/x.yml" in err
    assert git_door_rig.refused[-1][2][0]["why"].startswith(
        "changes a CI workflow: .github/workflows/x.yml"
    )
    # The repository's policy changes (the line repo is made again, keeping its branch).
    await create_line_repo(
        git_door_rig.lines["alice"],
        git_door_rig.mirror,
        branch="fw/alice/1",
        base_ref="main",
        start_sha=git_door_rig.base_sha,
        agent="alice",
        repo=REPO,
        hooks_dir=git_door_rig.hooks,
        rules=LineRules(workflows=True),
    )
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    await git("rm", "-q", ".github/workflows/x.yml", cwd=clone)
    await git("commit", "-qm", "no ci", cwd=clone)
    sha = (await git("rev-parse", "HEAD", cwd=clone)).out.strip()
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    assert await git_door_rig.tip("alice") == sha


AWS_FILE = f"""import os

AWS_ACCESS_KEY_ID = "{AWS_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
"""


async def test_a_commit_adding_an_aws_key_is_refused_naming_file_and_line(
    git_door_rig: Rig,
) -> None:
    clone = await git_door_rig.clone("alice")
    sha = await commit(clone, {"src/settings.py": AWS_FILE}, "settings")
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="secret")
    assert f"commit {sha[:12]} src/settings.py:3:" in err, err
    assert "src/settings.py:4" in err, err
    assert AWS_ID not in err and AWS_SECRET not in err
    assert AWS_ID[4:12] not in err and AWS_SECRET[4:14] not in err
    why = git_door_rig.refused[-1][2][0]["why"]
    assert "src/settings.py:3" in why and AWS_ID not in why and AWS_SECRET not in why
    refusals_file = git_door_rig.lines["alice"] / "fleetwarden" / "refusals.jsonl"
    assert refusals_file.read_bytes() == b""  # taken by the door


async def test_a_secret_removed_in_a_later_commit_is_still_refused(git_door_rig: Rig) -> None:
    clone = await git_door_rig.clone("alice")
    added = await commit(clone, {"deploy.py": AWS_FILE}, "add")
    await commit(
        clone, {"deploy.py": "import os\n\nKEY = os.environ['AWS_ACCESS_KEY_ID']\n"}, "fix"
    )
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="secret")
    assert f"commit {added[:12]} deploy.py:3" in err
    assert "a later commit removing it is not enough" in err
    assert AWS_ID not in err and AWS_SECRET not in err


async def test_receive_pack_tricks_run_nothing_over_http(git_door_rig: Rig) -> None:
    clone = await git_door_rig.clone("alice")
    marker = git_door_rig.tmp / "pwned"
    await commit(clone, {"a.txt": "a\n"})
    ran = await git(
        "push", f"--receive-pack=touch {marker}", "origin", "HEAD:fw/alice/1", cwd=clone
    )
    assert ran.code == 0
    await commit(clone, {"b.txt": "b\n"})
    await git(
        "-c",
        f"remote.origin.receivepack=touch {marker}",
        "push",
        "origin",
        "HEAD:fw/alice/1",
        cwd=clone,
    )
    await git("-c", f"remote.origin.uploadpack=touch {marker}", "fetch", "origin", cwd=clone)
    await git("fetch", f"--upload-pack=touch {marker}", "origin", cwd=clone)
    refused = await git(
        "push", f"--receive-pack=touch {marker}", "origin", "HEAD:main", cwd=clone, check=False
    )
    assert refused.code != 0
    assert not marker.exists()
    assert (
        await git_door_rig.tip("alice") == (await git("rev-parse", "HEAD", cwd=clone)).out.strip()
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_tokens_missing_wrong_or_another_agents_get_nothing(git_door_rig: Rig) -> None:
    alice, bob = git_door_rig.token("alice"), git_door_rig.token("bob")
    base = f"http://127.0.0.1:{git_door_rig.server.port}/git/alice/{REPO}.git"
    refs = "/info/refs?service=git-upload-pack"
    async with aiohttp.ClientSession() as http:

        async def status(path: str, auth: str | None, method: str = "GET") -> int:
            headers = {} if auth is None else {"Authorization": auth}
            async with http.request(method, base + path, headers=headers) as response:
                if response.status == 401:
                    assert response.headers["WWW-Authenticate"] == 'Basic realm="fleetwarden"'
                return response.status

        assert await status(refs, None) == 401
        assert await status(refs, basic("alice", "wrong")) == 403
        assert await status(refs, basic("alice", bob)) == 403
        assert await status(refs, basic("bob", bob)) == 403
        assert await status(refs, basic("alice", alice)) == 200
        good = basic("alice", alice)
        for dumb in (
            "/HEAD",
            "/objects/info/packs",
            "/info/refs",
            "/config",
            "/info/refs?service=git-upload-archive",
            "/../bob/2.git/HEAD",
        ):
            assert await status(dumb, good) == 404, dumb
        assert await status("/git-receive-pack", good, "GET") == 404
        assert await status(refs, None, "POST") == 401
    # Real git: no token, a wrong one, another agent's.
    for url in (
        git_door_rig.url("alice"),
        git_door_rig.url("alice", "nope"),
        git_door_rig.url("alice", bob, "bob"),
    ):
        ran = await git("ls-remote", url, cwd=git_door_rig.tmp, check=False)
        assert ran.code != 0 and "fw/alice/1" not in ran.out
    ran = await git("ls-remote", git_door_rig.url("alice", bob), cwd=git_door_rig.tmp, check=False)
    assert "403" in ran.err
    assert (
        await git("ls-remote", git_door_rig.url("nobody", alice), cwd=git_door_rig.tmp, check=False)
    ).code != 0


async def test_an_agent_cannot_fetch_what_another_pushed_even_by_sha(git_door_rig: Rig) -> None:
    alice = await git_door_rig.clone("alice")
    secret_work = await commit(alice, {"alice.txt": "alice's work\n"})
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=alice)
    bob = await git_door_rig.clone("bob")
    listed = (await git("ls-remote", "origin", cwd=bob)).out
    assert secret_work not in listed and "fw/alice" not in listed
    ran = await git("fetch", "origin", secret_work, cwd=bob, check=False)
    assert ran.code != 0
    assert "not our ref" in ran.err or "unadvertised object" in ran.err, ran.err
    ran = await git("cat-file", "-e", secret_work, cwd=bob, check=False)
    assert ran.code != 0
    # Protocol v2 asked for is not given: the server speaks v0 only.
    ran = await git(
        "-c", "protocol.version=2", "fetch", "origin", secret_work, cwd=bob, check=False
    )
    assert ran.code != 0
    # Alice's URL with bob's token gets nothing either.
    ran = await git(
        "fetch",
        git_door_rig.url("alice", git_door_rig.token("bob"), "bob"),
        secret_work,
        cwd=bob,
        check=False,
    )
    assert ran.code != 0


async def fast_import(clone: Path, stream: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "git",
        "fast-import",
        "--quiet",
        cwd=clone,
        stdin=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"},
    )
    await proc.communicate(stream.encode())
    assert proc.returncode == 0


async def test_a_gzipped_fetch_request_is_served(git_door_rig: Rig) -> None:
    """git gzips an upload-pack request over 1 KiB (many haves): aiohttp inflates it
    before the door streams it to http-backend."""
    clone = await git_door_rig.clone("alice")
    soon = int(time.time()) + 1000  # newer than the branch: sent as haves first
    stream = "".join(
        f"commit refs/heads/local\ncommitter A <a@example.invalid> {soon + n} +0000\n"
        f"data 9\nlocal {n:03}\n"
        + ("from refs/heads/fw/alice/1^0\n" if n == 0 else "")
        + f"M 644 inline n.txt\ndata 4\n{n:03}\n\n"
        for n in range(300)
    )
    await fast_import(clone, stream)
    other = await git_door_rig.clone("alice", "clone-alice-2")
    pushed = await commit(other, {"o.txt": "o\n"})
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=other)
    trace = git_door_rig.tmp / "curl.trace"
    await git("fetch", "origin", cwd=clone, env={"GIT_TRACE_CURL": str(trace)})
    assert "Content-Encoding: gzip" in trace.read_text(errors="replace")
    assert (await git("rev-parse", "origin/fw/alice/1", cwd=clone)).out.strip() == pushed


async def test_a_push_of_500_files_is_checked_quickly(git_door_rig: Rig) -> None:
    clone = await git_door_rig.clone("alice")
    files = {
        f"pkg{n % 20}/module_{n}.py": "".join(
            f"def f_{n}_{i}(key, token=None):\n    return {{'id': {i}, 'name': 'x{i}'}}\n"
            for i in range(60)
        )
        for n in range(500)
    }
    sha = await commit(clone, files, "big")
    started = time.monotonic()
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    took = time.monotonic() - started
    assert await git_door_rig.tip("alice") == sha
    assert took < 15, f"the push took {took:.1f} s"


async def test_the_line_repo_is_closed_and_made_again_keeps_its_branch(git_door_rig: Rig) -> None:
    line = git_door_rig.lines["alice"]
    assert os.stat(line).st_mode & 0o777 == 0o700
    assert os.stat(line.parent).st_mode & 0o777 == 0o700
    assert os.stat(git_door_rig.hooks / "pre-receive").st_mode & 0o777 == 0o700
    alternates = (line / "objects" / "info" / "alternates").read_text().strip()
    assert alternates == str(git_door_rig.mirror / "objects")
    config = (await git("config", "--list", cwd=line)).out
    for setting in (
        "http.receivepack=true",
        "receive.denydeletes=true",
        "receive.denynonfastforwards=true",
        "receive.fsckobjects=true",
        f"core.hookspath={git_door_rig.hooks}",
        "fleetwarden.branch=refs/heads/fw/alice/1",
        "fleetwarden.workflows=false",
        "fleetwarden.agent=alice",
        f"fleetwarden.repo={REPO}",
    ):
        assert setting in config.splitlines(), setting
    clone = await git_door_rig.clone("alice")
    sha = await commit(clone, {"x.txt": "x\n"})
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    await create_line_repo(
        line,
        git_door_rig.mirror,
        branch="fw/alice/1",
        base_ref="main",
        start_sha=git_door_rig.base_sha,
        agent="alice",
        repo=REPO,
        hooks_dir=git_door_rig.hooks,
        rules=LineRules(workflows=False),
    )
    assert await git_door_rig.tip("alice") == sha


LEAKED_FIXTURE = f'FIXTURE = {{"aws_access_key_id": "{AWS_ID}", "secret": "{AWS_SECRET}"}}\n'


async def test_upstream_content_is_not_refused_when_the_base_moves(git_door_rig: Rig) -> None:
    """The base gains an upstream commit with a credential-shaped fixture; the agent
    merges the base into its branch and pushes: the merge brings nothing new of its own,
    so it is taken. A secret in the merge's own resolution is still refused."""
    work = git_door_rig.tmp / "upstream-work"
    await commit(work, {"tests/fixture.py": LEAKED_FIXTURE}, "fixture")
    await git("push", "-q", str(git_door_rig.mirror), "main", cwd=work)
    moved = (await git("rev-parse", "HEAD", cwd=work)).out.strip()
    await set_base(git_door_rig.lines["alice"], "main", moved)
    clone = await git_door_rig.clone("alice")
    await commit(clone, {"mine.txt": "mine\n"})
    await git("fetch", "-q", "origin", cwd=clone)
    await git("merge", "-q", "--no-edit", "origin/main", cwd=clone)
    merged = (await git("rev-parse", "HEAD", cwd=clone)).out.strip()
    await git("push", "-q", "origin", "HEAD:fw/alice/1", cwd=clone)
    assert await git_door_rig.tip("alice") == merged
    assert git_door_rig.refused == []
    # An evil merge: the merge commit itself adds a secret.
    await git("reset", "-q", "--hard", "HEAD~1", cwd=clone)
    await commit(clone, {"other.txt": "other\n"})
    await git("merge", "-q", "--no-commit", "origin/main", cwd=clone, check=False)
    (clone / "mine.txt").write_text(AWS_FILE)
    await git("add", "-A", cwd=clone)
    await git("commit", "-qm", "merge", cwd=clone)
    evil = (await git("rev-parse", "HEAD", cwd=clone)).out.strip()
    await git("fetch", "-q", "origin", cwd=clone)
    await git("merge", "-q", "--no-edit", "-s", "ours", "origin/fw/alice/1", cwd=clone)
    err = await refused_push(git_door_rig, clone, "origin", "HEAD:fw/alice/1", kind="secret")
    assert f"commit {evil[:12]} mine.txt:3" in err, err
    assert "tests/fixture.py" not in err


def backends_of(root: Path) -> list[int]:
    """The http-backend processes serving a line repo under ``root``."""
    needle = f"GIT_PROJECT_ROOT={root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
async def tight(git_door_rig: Rig) -> AsyncIterator[tuple[HeartbeatServer, str]]:
    """A second endpoint whose door takes 64 KiB and 3 seconds a request at most."""

    async def resolve(agent: AgentName, repo: str) -> Path | None:
        return git_door_rig.lines.get(agent)

    async def on_refusals(agent: AgentName, repo: str, found: list[dict[str, str]]) -> None:
        pass

    async def on_beat(agent: str, kind: str) -> None:
        pass

    door = GitDoor(resolve, on_refusals, time_limit=3.0, max_body=64 * 1024)
    server = HeartbeatServer(git_door_rig.tmp / "state" / "hb2", on_beat, gits=door)
    await server.start()
    try:
        yield server, server.token_for("alice")
    finally:
        await server.stop()


async def test_a_body_past_the_cap_is_refused(
    git_door_rig: Rig, tight: tuple[HeartbeatServer, str]
) -> None:
    server, token = tight
    url = f"http://127.0.0.1:{server.port}/git/alice/{REPO}.git/git-upload-pack"
    headers = {
        "Authorization": basic("alice", token),
        "Content-Type": "application/x-git-upload-pack-request",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=b"0" * 70_000, headers=headers) as response:
            assert response.status == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"0" * 4096

        async with http.post(url, data=chunks(), headers=headers) as response:
            assert response.status == 413
    await eventually(
        lambda: not backends_of(git_door_rig.lines["alice"].parent), "http-backend gone"
    )


async def test_a_slow_request_is_cut_and_a_client_that_leaves_takes_its_backend_along(
    git_door_rig: Rig, tight: tuple[HeartbeatServer, str]
) -> None:
    server, token = tight
    url = f"http://127.0.0.1:{server.port}/git/alice/{REPO}.git/git-upload-pack"
    headers = {
        "Authorization": basic("alice", token),
        "Content-Type": "application/x-git-upload-pack-request",
    }
    root = git_door_rig.lines["alice"].parent

    async def trickle() -> AsyncIterator[bytes]:
        while True:
            yield b"0"
            await asyncio.sleep(0.2)

    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.post(url, data=trickle(), headers=headers) as response:
            assert response.status == 504
        assert time.monotonic() - started < 10
        await eventually(lambda: not backends_of(root), "the slow request's backend gone")

        posting = asyncio.create_task(http.post(url, data=trickle(), headers=headers))
        await eventually(lambda: backends_of(root), "http-backend running")
        assert server.admission.in_flight("alice") == 1  # counted against alice's cap
        posting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await posting
        await eventually(lambda: not backends_of(root), "http-backend killed", within=2.5)
