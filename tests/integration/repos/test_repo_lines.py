"""Runs' lines against real git end to end, below the chat: a real upstream served by
``git http-backend`` that demands its token, Fleetwarden's mirror and door repos, checkouts
made by :class:`~fleet.repos.service.Repos`, pushes through the real git door on a real
heartbeat endpoint, the end of a run kept in a ``wip`` commit, and the verbs — merge,
push, discard — landing (or not) on the upstream."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from fleet.repos.desk import RepoError
from fleet.repos.door.server import GitDoor
from fleet.repos.line.cutting import Asked
from fleet.repos.schema import RepoEntry
from fleet.repos.service import Repos
from fleet.repos.stores import RepoStores
from fleet.repos.verbs import RepoVerbs
from fleet.timing.clock import SystemClock
from fleet.watchdog.heartbeat import HeartbeatServer
from tests import sandbox_need
from tests.git_upstream import GitUpstream, token_anywhere

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_upstreamTokenOnlyFleetwardenHolds0123"
AGENT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0",
}  # no identity: the checkout's config gives the agent its own


async def agent_git(
    checkout: Path, *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """git as the agent would run it in its checkout (no Fleetwarden environment), while
    the door serves it on this event loop."""
    done = await asyncio.to_thread(
        subprocess.run,
        ["git", *args],
        cwd=checkout,
        env=AGENT_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ok and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done


@dataclass
class Rig:
    upstream: GitUpstream
    repos: Repos
    verbs: RepoVerbs
    ledger: Ledger
    heartbeats: HeartbeatServer
    state: Path

    async def spawn(self, name: str, asked: Asked | None = None, **kw: object) -> Path:
        spec = AgentSpec(name=AgentName(name), runtime="command", repo="app", **kw)  # type: ignore[arg-type]
        await self.ledger.agents.upsert_agent(spec, DesiredState.STOPPED)
        try:
            prepared = await self.repos.prepare(spec, asked)
        finally:
            self.repos.launched(spec.name)  # as the launch does, started or refused
        assert prepared.spec.workdir is not None
        return prepared.spec.workdir

    async def run_ended(self, name: str, run_id: int) -> None:
        await self.repos.started(AgentName(name), run_id)
        await self.ledger.agents.set_state(name, AgentState.EXITED, "done")
        await self.repos.finished(AgentName(name), run_id)


async def open_rig(tmp_path: Path, upstream: GitUpstream, ledger: Ledger) -> Rig:
    entry = RepoEntry(url=upstream.url("app"), token_env="APP_TOKEN")

    def door_url(agent: str, repo: str) -> str:
        token = heartbeats.token_for(agent)
        return f"http://{agent}:{token}@127.0.0.1:{heartbeats.port}/git/{agent}/{repo}.git"

    repos = Repos(
        state_dir=tmp_path / "state",
        entries={"app": entry},
        stores=RepoStores(ledger.lines, ledger.agents, ledger.forge, ledger.refusals),
        environ={"APP_TOKEN": TOKEN},
        version="test",
        door_url=door_url,
    )
    await repos.start()
    try:
        heartbeats = HeartbeatServer(
            tmp_path / "state", _beat, gits=GitDoor(repos.door.door_repo, repos.door.refused)
        )
        await heartbeats.start()
    except BaseException:
        await repos.stop()  # its ready checkouts' work must not outlive the test
        raise
    return Rig(upstream, repos, RepoVerbs(repos), ledger, heartbeats, tmp_path / "state")


async def _beat(agent: str, kind: str) -> None:
    return None


@pytest.fixture
async def lines_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    upstream = GitUpstream(tmp_path / "upstream", TOKEN)
    (tmp_path / "upstream").mkdir()
    upstream.create("app", {"README.md": "# app\n", "src/main.py": "print('hi')\n"})
    upstream.start()
    ledger = await Ledger.connect(LedgerLocation(tmp_path / "state" / "ledger.db"), SystemClock())
    lines_rig = await open_rig(tmp_path, upstream, ledger)
    try:
        yield lines_rig
    finally:
        await lines_rig.repos.stop()
        await lines_rig.heartbeats.stop()
        await ledger.close()
        upstream.stop()


async def test_a_run_gets_its_own_branch_and_checkout_and_pushes_land_in_fleetwarden_only(
    lines_rig: Rig,
) -> None:
    checkout = await lines_rig.spawn("coder")
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.branch == f"fw/coder/{line.id}"
    assert (await agent_git(checkout, "branch", "--show-current")).stdout.strip() == line.branch
    (checkout / "NOTES.md").write_text("one\ntwo\n")
    await agent_git(checkout, "add", "NOTES.md")
    await agent_git(checkout, "commit", "-q", "-m", "notes")
    pushed = await agent_git(checkout, "push", "-q", "origin", "HEAD")
    assert pushed.returncode == 0, pushed.stderr
    assert lines_rig.upstream.pushes() == []  # nothing reached the upstream
    assert f"refs/heads/{line.branch}" not in lines_rig.upstream.branches("app")
    # The token is nowhere the agent can look: not its checkout, not the door repos.
    assert token_anywhere(TOKEN, checkout, lines_rig.state) == []
    change = await lines_rig.verbs.change("coder")
    assert [(f.path, f.added, f.removed) for f in change.files] == [("NOTES.md", 2, 0)]
    assert change.applies and not change.clashes


async def test_the_end_of_a_run_commits_its_work_and_merge_lands_one_commit_upstream(
    lines_rig: Rig,
) -> None:
    checkout = await lines_rig.spawn("coder")
    (checkout / "src" / "main.py").write_text("print('hello')\n")  # left uncommitted
    await lines_rig.run_ended("coder", 7)
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.head_sha is not None
    log = (await agent_git(checkout, "log", "-1", "--format=%s%n%b")).stdout
    assert "wip" in log and "Fleetwarden-Run: 7" in log and "Fleetwarden-Agent: coder" in log
    before = lines_rig.upstream.tip("app")
    diff = await lines_rig.verbs.diff("coder")
    assert "-print('hi')" in diff and "+print('hello')" in diff
    assert await lines_rig.verbs.unpushed("coder") == 1
    landed = await lines_rig.verbs.merge("coder", "squash", by="ann")
    assert landed.new_sha is not None and landed.refused is None
    after = lines_rig.upstream.tip("app")
    assert after == landed.new_sha and after != before
    assert lines_rig.upstream.show("app", "rev-parse", f"{after}^") == before  # one commit
    body = lines_rig.upstream.show("app", "log", "-1", "--format=%B", after)
    assert "Fleetwarden-Agent: coder" in body
    assert lines_rig.upstream.show("app", "show", f"{after}:src/main.py") == "print('hello')"
    assert all(seen.authorised for seen in lines_rig.upstream.requests if seen.status != 401)
    assert not checkout.exists()  # a merged run's checkout goes
    assert await lines_rig.repos.line_of("coder") is None


async def test_a_clash_with_the_base_is_reported_and_merge_changes_nothing(lines_rig: Rig) -> None:
    checkout = await lines_rig.spawn("coder")
    (checkout / "README.md").write_text("# app, by the agent\n")
    await lines_rig.run_ended("coder", 3)
    lines_rig.upstream.commit("app", {"README.md": "# app, by a teammate\n"})
    await lines_rig.repos.mirror("app").fetch()
    change = await lines_rig.verbs.change("coder")
    assert not change.applies and change.conflicts == ("README.md",)
    assert change.base_moved == 1
    before = lines_rig.upstream.branches("app")
    head = (await agent_git(checkout, "rev-parse", "HEAD")).stdout.strip()
    landed = await lines_rig.verbs.merge("coder", "squash", by="ann")
    assert landed.new_sha is None and landed.conflicts == ("README.md",)
    assert lines_rig.upstream.branches("app") == before
    assert (await agent_git(checkout, "rev-parse", "HEAD")).stdout.strip() == head
    assert (checkout / "README.md").read_text() == "# app, by the agent\n"


async def test_two_agents_clash_and_neither_reaches_the_others_branch(lines_rig: Rig) -> None:
    one = await lines_rig.spawn("one")
    two = await lines_rig.spawn("two")
    assert one != two
    for checkout, text in ((one, "print(1)\n"), (two, "print(2)\n")):
        (checkout / "src" / "main.py").write_text(text)
    await lines_rig.run_ended("one", 1)
    await lines_rig.run_ended("two", 2)
    change = await lines_rig.verbs.change("one")
    assert [(c.agent, c.files) for c in change.clashes] == [("two", ("src/main.py",))]
    line_two = await lines_rig.repos.line_of("two")
    assert line_two is not None
    # One's door serves only its own line: two's branch is not there to fetch.
    fetched = await agent_git(one, "fetch", "origin", f"refs/heads/{line_two.branch}", ok=False)
    assert fetched.returncode != 0
    assert line_two.head_sha is not None
    by_sha = await agent_git(one, "fetch", "origin", line_two.head_sha, ok=False)
    assert by_sha.returncode != 0


async def test_push_sends_the_branch_upstream_and_discard_asks_only_while_unpushed(
    lines_rig: Rig,
) -> None:
    checkout = await lines_rig.spawn("coder")
    (checkout / "NEW.md").write_text("new\n")
    await lines_rig.run_ended("coder", 4)
    line = await lines_rig.repos.line_of("coder")
    assert line is not None
    url = await lines_rig.verbs.push("coder")
    assert line.branch in url
    assert f"refs/heads/{line.branch}" in lines_rig.upstream.branches("app")
    assert await lines_rig.verbs.unpushed("coder") == 0
    await lines_rig.verbs.discard("coder")
    assert not checkout.exists()
    assert await lines_rig.repos.line_of("coder") is None
    with pytest.raises(RepoError, match="has no branch"):
        await lines_rig.verbs.diff("coder")


async def test_a_restart_keeps_the_line_and_fresh_cuts_a_new_one(
    lines_rig: Rig, tmp_path: Path
) -> None:
    checkout = await lines_rig.spawn("coder")
    (checkout / "KEEP.md").write_text("kept\n")
    # Fleetwarden stopped (its ready checkouts' git ended with it) and started again: two
    # pools over one directory would sweep each other's half-made entries, and a git left
    # running at the loop's end can hang its close.
    await lines_rig.repos.stop()
    await lines_rig.heartbeats.stop()
    again = await open_rig(tmp_path, lines_rig.upstream, lines_rig.ledger)
    try:
        assert await again.spawn("coder") == checkout
        assert (checkout / "KEEP.md").read_text() == "kept\n"
        fresh = await again.spawn("coder", Asked(fresh=True))
        assert fresh != checkout and not (fresh / "KEEP.md").exists()
    finally:
        await again.repos.stop()
        await again.heartbeats.stop()


async def test_a_running_agent_is_not_merged_or_discarded(lines_rig: Rig) -> None:
    await lines_rig.spawn("coder")
    await lines_rig.ledger.agents.set_state("coder", AgentState.RUNNING, "pid 1")
    for verb in (lines_rig.verbs.discard("coder"), lines_rig.verbs.merge("coder", None, by="ann")):
        with pytest.raises(RepoError, match="stop coder"):
            await verb
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and Path(line.checkout).is_dir()  # noqa: ASYNC240


async def test_a_secret_left_at_a_runs_end_stays_in_the_checkout_and_is_counted(
    lines_rig: Rig,
) -> None:
    """The wip push goes through the hook: refused, counted in the ledger like the door's
    refusals, the summary's verdict says so, and the work stays committed in the checkout."""
    checkout = await lines_rig.spawn("coder")
    key = "AKIA" + "QYLPMN5HFIQR7XZB"
    (checkout / "creds.ini").write_text(f"aws_access_key_id = {key}\n")
    await lines_rig.run_ended("coder", 5)
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.head_sha is None  # nothing taken on the branch
    counted = await lines_rig.ledger.refusals.refusals("coder")
    assert [(r.source, r.count) for r in counted] == [("git", 1)]
    assert "secret" in counted[0].why and key not in counted[0].why
    change = await lines_rig.verbs.change("coder")
    assert change.secrets == "refused 1 push holding a secret"
    assert (await agent_git(checkout, "log", "-1", "--format=%s")).stdout.startswith("wip")
    kept = lines_rig.repos.line_repo(line) / "fleetwarden" / "refusals.jsonl"
    assert kept.read_bytes() == b""  # taken, not left for the next push to count
