"""Ready checkouts against real git, below the chat: a real upstream served by
``git http-backend``, Fleetwarden's mirror and door repos, and :class:`~fleet.repos.service.Repos`
keeping one checkout of the base made ahead (``ready_checkouts``). A new line's checkout
is that one, renamed onto its path: its own ``.git`` (a clone, no worktree, no alternates),
on its branch, ``origin`` the git door, the identity and co-author hook as a checkout made
at the launch has them; the pool is made again, brought to the base when a fetch moves it,
set aside when it is corrupt (the run's checkout made as without it), never holds what a
run made, never shows as a run's, and is removed with its repository."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from pydantic import ValidationError

from fleet.lane_files import hand_over_lane
from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.repos import git as g
from fleet.repos.door.line_repo import line_identity
from fleet.repos.hook.policy import Identity
from fleet.repos.line.checkouts import NewBranch, make_checkout
from fleet.repos.line.cutting import Asked
from fleet.repos.schema import RepoEntry
from fleet.repos.service import Repos
from fleet.repos.stores import RepoStores
from fleet.sandbox.lanes import Lanes
from fleet.timing.clock import SystemClock
from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.repos.test_repo_lines import TOKEN, Rig, agent_git, open_rig

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

CO_AUTHOR = "Ann Example <ann@example.org>"
UID = 1_650_321  # an agent's lane's, as root


@pytest.fixture
async def ready_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    upstream = GitUpstream(tmp_path / "upstream", TOKEN)
    (tmp_path / "upstream").mkdir()
    upstream.create("app", {"README.md": "# app\n", "src/main.py": "print('hi')\n"})
    upstream.start()
    ledger = await Ledger.connect(LedgerLocation(tmp_path / "state" / "ledger.db"), SystemClock())
    ready_rig = await open_rig(tmp_path, upstream, ledger)
    try:
        await ready_rig.repos.ready.settled("app")
        yield ready_rig
    finally:
        await ready_rig.repos.stop()
        await ready_rig.heartbeats.stop()
        await ledger.close()
        upstream.stop()


def entries(rig: Rig) -> list[Path]:
    return rig.repos.ready.ready("app")


async def head(repo: Path) -> str:
    return (await g.git(repo, ["rev-parse", "HEAD"])).text.strip()


async def local_config(repo: Path) -> list[str]:
    listed = await g.git(repo, ["config", "--local", "--list"])
    return sorted(listed.text.splitlines())


async def test_a_new_line_gets_the_ready_checkout_as_its_own_clone_on_its_branch(
    ready_rig: Rig, tmp_path: Path
) -> None:
    """The entry becomes the run's checkout by a rename: a real clone with its own
    ``.git``, on the line's branch, ``origin`` the door (a push lands in the door repo),
    the identity and hook as a checkout made without the pool has them, and one is made
    again for the next run."""
    (ready,) = entries(ready_rig)
    checkout = await ready_rig.spawn("coder", Asked(co_author=CO_AUTHOR))
    assert not ready.exists()
    line = await ready_rig.repos.line_of("coder")
    assert line is not None and line.checkout == str(checkout)
    assert (checkout / ".git").is_dir() and not (checkout / ".git" / "commondir").exists()
    assert not (checkout / ".git" / "objects" / "info" / "alternates").exists()
    assert (await agent_git(checkout, "branch", "--show-current")).stdout.strip() == line.branch
    assert await head(checkout) == line.fork_sha
    assert (await agent_git(checkout, "status", "--porcelain")).stdout == ""
    origin = (await agent_git(checkout, "remote", "get-url", "origin")).stdout.strip()
    assert origin == ready_rig.repos.origin_of("coder", "app")
    hook = checkout / ".git" / "hooks" / "prepare-commit-msg"
    assert hook.is_file() and hook.stat().st_mode & 0o111
    # The same settings as a checkout made at the launch from the mirror.
    made = tmp_path / "made"
    await make_checkout(
        ready_rig.repos.mirror("app").path, made,
        NewBranch("main", line.branch, origin, identity=await _identity(ready_rig, line.id),
                  start_sha=line.fork_sha, co_author=CO_AUTHOR),
    )  # fmt: skip
    assert await local_config(checkout) == await local_config(made)
    # The agent's commit, with its co-author, lands in the door repo through origin.
    (checkout / "NOTES.md").write_text("notes\n")
    await agent_git(checkout, "add", "NOTES.md")
    await agent_git(checkout, "commit", "-q", "-m", "Notes")
    body = (await agent_git(checkout, "log", "-1", "--format=%B")).stdout
    assert f"Co-authored-by: {CO_AUTHOR}" in body
    pushed = await agent_git(checkout, "push", "-q", "origin", "HEAD", ok=False)
    assert pushed.returncode == 0, pushed.stderr
    assert await ready_rig.repos.line_tip(line.id) == await head(checkout)
    await ready_rig.repos.ready.settled("app")  # made again for the next run
    (again,) = entries(ready_rig)
    assert again != ready and await head(again) == line.fork_sha


async def _identity(rig: Rig, line_id: int) -> Identity:
    line = await rig.repos.stores.lines.line(line_id)
    assert line is not None
    return await line_identity(rig.repos.line_repo(line), line.agent, line.host)


async def test_the_entry_is_brought_to_the_base_when_a_fetch_moves_it(ready_rig: Rig) -> None:
    (ready,) = entries(ready_rig)
    tip = ready_rig.upstream.commit("app", {"src/new.py": "print('new')\n"})
    await ready_rig.repos.mirror("app").fetch()
    await ready_rig.repos.ready.settled("app")
    assert (
        entries(ready_rig) == [ready] and await head(ready) == tip
    )  # brought there, not made anew
    checkout = await ready_rig.spawn("coder")
    assert await head(checkout) == tip and (checkout / "src" / "new.py").is_file()


async def test_an_entry_behind_the_runs_start_is_brought_to_it_at_hand_over(ready_rig: Rig) -> None:
    """The base moved upstream since the entry was made, and no fetch told the pool: the
    run's own fetch finds the new tip, and the entry is brought to it as it is handed over."""
    (ready,) = entries(ready_rig)
    before = await head(ready)
    tip = ready_rig.upstream.commit("app", {"README.md": "# app, moved\n"})
    ready_rig.repos.mirror("app").fetched = None  # the pool hears of no fetch
    checkout = await ready_rig.spawn("coder")
    assert not ready.exists() and before != tip
    assert await head(checkout) == tip
    assert (checkout / "README.md").read_text() == "# app, moved\n"
    assert (await agent_git(checkout, "status", "--porcelain")).stdout == ""


async def test_a_corrupt_entry_is_set_aside_and_the_checkout_made_as_without_it(
    ready_rig: Rig,
) -> None:
    (ready,) = entries(ready_rig)
    shutil.rmtree(ready / ".git" / "objects")
    (ready / ".git" / "HEAD").write_text("garbage\n")
    checkout = await ready_rig.spawn("coder")
    line = await ready_rig.repos.line_of("coder")
    assert line is not None
    assert await head(checkout) == line.fork_sha
    assert (await agent_git(checkout, "branch", "--show-current")).stdout.strip() == line.branch
    assert (checkout / "src" / "main.py").read_text() == "print('hi')\n"
    await ready_rig.repos.ready.settled("app")
    (again,) = entries(ready_rig)
    assert await head(again) == line.fork_sha
    leftovers = [p.name for p in ready_rig.repos.ready.where("app").iterdir()]
    assert leftovers == [again.name]  # the corrupt one removed


async def test_no_entry_holds_anything_a_run_made(ready_rig: Rig) -> None:
    checkout = await ready_rig.spawn("coder")
    (checkout / "RUN.md").write_text("made by the run\n")
    await agent_git(checkout, "add", "RUN.md")
    await agent_git(checkout, "commit", "-q", "-m", "The run's commit")
    made = await head(checkout)
    assert (await agent_git(checkout, "push", "-q", "origin", "HEAD", ok=False)).returncode == 0
    await ready_rig.run_ended("coder", 1)
    await ready_rig.repos.mirror("app").fetch()
    await ready_rig.repos.ready.settled("app")
    (ready,) = entries(ready_rig)
    found = await g.git(ready, ["cat-file", "-e", f"{made}^{{commit}}"], ok=(0, 1, 128))
    assert found.code != 0
    listed = await g.git(ready, ["rev-list", "--all", "--objects"])
    names = "\n".join(line.split()[0] for line in listed.text.splitlines()) + "\n"
    mirror = ready_rig.repos.mirror("app").path
    checked = await g.git(mirror, ["cat-file", "--batch-check"], stdin=names.encode(), ok=(0,))
    assert "missing" not in checked.text  # every object of the entry is the mirror's
    assert not (ready / "RUN.md").exists()
    assert await ready_rig.verbs.orphans() == []  # entries never show as runs' checkouts


def test_ready_checkouts_is_a_small_whole_number() -> None:
    url = "https://example.org/acme/app.git"
    assert RepoEntry(url=url).ready_checkouts == 1
    assert RepoEntry(url=url, ready_checkouts=0).ready_checkouts == 0
    for bad, said in (
        (-1, "ready_checkouts is from 0 (none) to 8, not -1"),
        (9, "ready_checkouts is from 0 (none) to 8, not 9"),
        ("two", "found the text 'two' (write the number without quotes)"),
        (True, "found a boolean (yes/no, true/false)"),
        (1.5, "ready_checkouts is a whole number from 0 to 8"),
    ):
        with pytest.raises(ValidationError) as caught:
            RepoEntry(url=url, ready_checkouts=bad)
        assert said in str(caught.value)


async def test_entries_go_with_their_repository_and_with_ready_checkouts_0(
    ready_rig: Rig, tmp_path: Path
) -> None:
    """At start, a repository gone from the config loses its entries (its mirror stays,
    as it does today), and one whose ``ready_checkouts`` is 0 keeps none."""
    (ready,) = entries(ready_rig)
    gone = tmp_path / "state" / "repos" / "old"
    (gone / "ready" / "0001").mkdir(parents=True)
    (gone / "mirror.git").mkdir()
    await ready_rig.repos.stop()
    entry = RepoEntry(url=ready_rig.upstream.url("app"), token_env="APP_TOKEN", ready_checkouts=0)
    again = Repos(
        state_dir=tmp_path / "state",
        entries={"app": entry},
        stores=RepoStores(
            ready_rig.ledger.lines,
            ready_rig.ledger.agents,
            ready_rig.ledger.forge,
            ready_rig.ledger.refusals,
        ),
        environ={"APP_TOKEN": TOKEN},
    )
    await again.start()
    try:
        assert not (gone / "ready").exists() and (gone / "mirror.git").is_dir()
        assert not ready.exists() and again.ready.ready("app") == []
    finally:
        await again.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="lanes have uids of their own only as root")
async def test_the_entry_is_given_ahead_to_the_uid_the_last_checkout_went_to(
    ready_rig: Rig, tmp_path: Path
) -> None:
    """As root, the launch hands a checkout to its agent's uid; the next entry's work tree
    is given to that uid ahead (its directory and .git stay Fleetwarden's, whose git
    still reads it), so the next launch's hand-over finds it done; a file the base's move
    rewrote is given again."""
    first = await ready_rig.spawn("coder")
    home = tmp_path / "home"
    home.mkdir()
    hand_over_lane(home, first, UID)  # as the launch does
    ready_rig.repos.ready.stir("app")
    await ready_rig.repos.ready.settled("app")
    (ready,) = entries(ready_rig)
    assert ready.stat().st_uid == 0 and (ready / ".git").stat().st_uid == 0
    assert (ready / "README.md").stat().st_uid == UID
    assert (ready / "src").stat().st_uid == UID and (ready / "src" / "main.py").stat().st_uid == UID
    assert (ready / ".git" / "HEAD").stat().st_uid == 0
    ready_rig.upstream.commit("app", {"README.md": "# app, moved\n"})
    await ready_rig.repos.mirror("app").fetch()
    await ready_rig.repos.ready.settled("app")
    assert entries(ready_rig) == [ready] and (ready / "README.md").read_text() == "# app, moved\n"
    assert (ready / "README.md").stat().st_uid == UID  # given again once brought
    second = await ready_rig.spawn("coder", Asked(fresh=True))
    assert not ready.exists() and await head(second) == ready_rig.upstream.tip("app")
    tree = [p for p in second.rglob("*") if ".git" not in p.relative_to(second).parts]
    assert {p.stat(follow_symlinks=False).st_uid for p in tree} == {UID}  # given ahead
    assert (second / ".git" / "config").stat().st_uid == 0  # written at the cut, as root
    hand_over_lane(home, second, UID)  # the launch's, the same as for any checkout
    owners = {p.stat(follow_symlinks=False).st_uid for p in second.rglob("*")}
    assert owners == {UID}


@pytest.mark.skipif(os.geteuid() != 0, reason="lanes have uids of their own only as root")
async def test_the_entry_is_given_ahead_to_the_uid_the_next_new_agent_gets(
    ready_rig: Rig, tmp_path: Path
) -> None:
    """As root, with the lanes' uids known to the pool: the entry's work tree goes ahead to
    the uid the next agent new to this host will get, so that agent's launch finds its
    checkout its own; after a checkout went to a new agent, the next entry goes to the one
    after; once one went to an agent that had its uid already, the next goes to that
    agent's uid, as before."""
    (tmp_path / "lanes").mkdir()
    lanes = Lanes(tmp_path / "lanes", root=True)
    pool = ready_rig.repos.ready
    pool.next_uid = lanes.next_uid
    pool.stir("app")
    await pool.settled("app")
    (ready,) = entries(ready_rig)
    new = lanes.next_uid()
    assert new is not None and (ready / "README.md").stat().st_uid == new
    assert ready.stat().st_uid == 0 and (ready / ".git").stat().st_uid == 0
    first = await ready_rig.spawn("coder")
    home = tmp_path / "home"
    home.mkdir()
    assert lanes.uid_for("coder") == new  # the launch: coder is new here
    hand_over_lane(home, first, new)
    pool.stir("app")
    await pool.settled("app")
    (ready,) = entries(ready_rig)
    after = lanes.next_uid()
    assert after not in (None, new) and (ready / "src" / "main.py").stat().st_uid == after
    second = await ready_rig.spawn("coder", Asked(fresh=True))
    assert {p.stat().st_uid for p in second.rglob("*") if ".git" not in p.parts} == {after}
    hand_over_lane(home, second, new)  # coder had its uid: everything is handed over
    assert {p.stat(follow_symlinks=False).st_uid for p in second.rglob("*")} == {new}
    pool.stir("app")
    await pool.settled("app")
    (ready,) = entries(ready_rig)
    assert (ready / "README.md").stat().st_uid == new  # the last taker's, as before


@pytest.mark.skipif(os.geteuid() != 0, reason="lanes have uids of their own only as root")
async def test_an_entry_given_ahead_is_taken_back_for_a_run_no_launch_hands_over(
    ready_rig: Rig, tmp_path: Path
) -> None:
    """An entry's work tree given ahead to the last agent's uid goes to a run without a
    sandbox (``sandbox: none``: its launch hands nothing over, it runs as Fleetwarden):
    the checkout is Fleetwarden's alone, none of it left to the other agent's uid."""
    first = await ready_rig.spawn("coder")
    home = tmp_path / "home"
    home.mkdir()
    hand_over_lane(home, first, UID)  # as the launch of a sandboxed agent does
    ready_rig.repos.ready.stir("app")
    await ready_rig.repos.ready.settled("app")
    (ready,) = entries(ready_rig)
    assert (ready / "README.md").stat().st_uid == UID  # given ahead
    second = await ready_rig.spawn("plain", sandbox="none")
    assert not ready.exists()
    owners = {p.stat(follow_symlinks=False).st_uid for p in second.rglob("*")}
    assert owners == {os.geteuid()}


async def test_an_entry_of_a_default_branch_no_longer_configured_is_never_handed_out(
    ready_rig: Rig, tmp_path: Path
) -> None:
    """Made on ``main``, then Fleetwarden starts again with ``default_branch: dev``: the
    entry is not a clone of ``dev`` (its fetch refspec, its branches name ``main``), so a
    run on ``dev`` gets a checkout with the settings and branches a clone of ``dev`` has."""
    (ready,) = entries(ready_rig)
    bare = ready_rig.upstream.root / "app.git"
    await g.git(bare, ["branch", "dev", "main"])
    tip = ready_rig.upstream.commit("app", {"DEV.md": "dev\n"}, branch="dev")
    await ready_rig.repos.stop()
    entry = RepoEntry(
        url=ready_rig.upstream.url("app"), token_env="APP_TOKEN", default_branch="dev"
    )
    again = Repos(
        state_dir=tmp_path / "state",
        entries={"app": entry},
        stores=RepoStores(
            ready_rig.ledger.lines,
            ready_rig.ledger.agents,
            ready_rig.ledger.forge,
            ready_rig.ledger.refusals,
        ),
        environ={"APP_TOKEN": TOKEN},
    )
    await again.start()
    try:
        await again.ready.settled("app")
        made, taken = tmp_path / "made", tmp_path / "taken"
        mirror = again.mirror("app").path
        pooled = partial(again.ready.take, "app", "dev", tip)
        for dest, ready_take in ((made, None), (taken, pooled)):
            await make_checkout(
                mirror, dest, NewBranch("dev", "fw/one", "http://door/app.git", start_sha=tip),
                ready=ready_take,
            )  # fmt: skip
        assert not ready.exists()  # set aside, and removed
        assert await head(taken) == tip
        assert await local_config(taken) == await local_config(made)
        refs = ["for-each-ref", "--format=%(refname)"]
        assert (await g.git(taken, refs)).text == (await g.git(made, refs)).text
    finally:
        await again.stop()


async def test_a_commit_the_upstream_took_back_is_in_no_checkout_the_pool_hands_out(
    ready_rig: Rig,
) -> None:
    """A commit pushed upstream (a secret, say) reaches the entry, then the upstream's
    base is forced back past it: a run's checkout holds what the base reaches now, as a
    clone made at its start does — not the commit taken back, in the entry's reflog."""
    (ready,) = entries(ready_rig)
    start = ready_rig.upstream.tip("app")
    assert start is not None
    secret = ready_rig.upstream.commit("app", {"secret.txt": "hunter2\n"})
    await ready_rig.repos.mirror("app").fetch()
    await ready_rig.repos.ready.settled("app")
    assert await head(ready) == secret  # brought there
    bare = ready_rig.upstream.root / "app.git"
    await g.git(bare, ["update-ref", "refs/heads/main", start])  # forced back
    tip = ready_rig.upstream.commit("app", {"README.md": "# app, without it\n"})
    await ready_rig.repos.mirror("app").fetch()
    await ready_rig.repos.ready.settled("app")
    checkout = await ready_rig.spawn("coder")
    assert await head(checkout) == tip
    found = await g.git(checkout, ["cat-file", "-e", f"{secret}^{{commit}}"], ok=(0, 1, 128))
    assert found.code != 0, "the commit taken back upstream is in the run's checkout"
    await ready_rig.repos.ready.settled("app")
    (again,) = entries(ready_rig)
    found = await g.git(again, ["cat-file", "-e", f"{secret}^{{commit}}"], ok=(0, 1, 128))
    assert found.code != 0  # nor in the one made for the next run
