"""`fleetwarden tasks --markdown` as an operator runs it, a real process over a real ledger
(SQLite, and PostgreSQL) a test wrote: TASKS.md and MISSIONS.md written whole, hostile
titles inert, the actual equal to the metered usage, the same bytes when written again;
`--mission` keeps one mission's tree; a bad `--out` or an unknown mission is said with its
fix, exit status 2, and nothing is written or left behind."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.ledger.records.tasks import Actual, NewTask, Projection
from fleet.timing.clock import ManualClock
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.unit.bot.render.test_task_documents import tokens
from tests.unit.chat_fakes import T0
from tests.unit.fleet.metering.test_run_watch import AGENT, SPEC, run_of, used

pytestmark = pytest.mark.integration

PROJECTED = Projection("agent coder-1 · runtime claude", (1,), (9000.0, 12000.0), (0.5, 0.75))
HOSTILE = "# Fix [it](javascript:x) ![i](http://x) <img onerror=x> | a\n```\nb"


SECRET = f"task-title-secret-{secrets.token_hex(16)}"
"""The value of the secret variable the config names (made anew each run, so no value that
looks like a key is kept in the tree), pasted into a task's title."""


def fleetwarden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args], capture_output=True, text=True, timeout=60,
        env=clean_env(FW_TASKS_KEY=SECRET), cwd=cwd,
    )  # fmt: skip


async def register(location: LedgerLocation, tmp_path: Path) -> None:
    """A register: mission auth with sub-mission login, and docs; a finished task of auth
    that ran, a working one of login with a hostile title, one in no mission."""
    clock = ManualClock(T0)
    ledger = await Ledger.connect(location, clock)
    try:
        auth = await ledger.missions.add_mission("auth", "Authentication rework", "@op:hs")
        assert auth is not None
        login = await ledger.missions.add_mission("login", "The login page", "@op:hs", auth.id)
        assert login is not None
        await ledger.missions.add_mission("docs", "Docs", "@op:hs")
        done = await ledger.tasks.add_task(
            NewTask("Sessions table", "chat", "@op:hs", mission=auth.id, agent=AGENT), PROJECTED
        )
        run = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # T0 .. T0+100
        await ledger.tasks.add_run(done.id, run)
        await ledger.metering.record_metering([used(10, 4000, 0.04), used(90, 333, 0.01)], [])
        await ledger.tasks.move(done.id, "working")
        actual = await ledger.actuals.actual(done.id)
        assert actual == Actual(4333, pytest.approx(0.05), 1)  # type: ignore[arg-type]
        await ledger.tasks.finish(
            done.id, "done", "merged", actual, (4333 / 9000, "tokens"), came_from=("working",)
        )
        hostile = await ledger.tasks.add_task(
            NewTask(HOSTILE, "forge", "bob", mission=login.id, agent=AGENT, repo="app"), PROJECTED
        )
        await ledger.tasks.move(hostile.id, "working")
        await ledger.tasks.set_fields(hostile.id, branch="fleet/coder-1/fix", pull_url=HOSTILE)
        await ledger.tasks.add_task(
            NewTask("Loose end", "chat", "@op:hs", body=f"use {SECRET}"), PROJECTED
        )
        await ledger.tasks.add_task(NewTask(f"Rotate {SECRET}", "chat", "@op:hs"), PROJECTED)
    finally:
        await ledger.close()


def config_for(tmp_path: Path, location: LedgerLocation) -> Path:
    config = tmp_path / "fleetwarden.yaml"
    ledger = f"ledger: {location.url}\n" if location.url else ""
    accounts = "accounts:\n  team: {kind: api_key, provider: anthropic, key_env: FW_TASKS_KEY}\n"
    config.write_text(f"state_dir: {location.path.parent}\n{ledger}{accounts}")
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    path = tmp_path / "state" / "ledger.db"
    if request.param == "sqlite":
        return LedgerLocation(path)
    return LedgerLocation(path, str(request.getfixturevalue("postgres_dsn")))


async def test_the_register_is_written_as_two_documents(
    location: LedgerLocation, tmp_path: Path
) -> None:
    await register(location, tmp_path)
    config = config_for(tmp_path, location)
    out = tmp_path / "docs"
    out.mkdir()
    wrote = fleetwarden("tasks", "--markdown", "--out", str(out), "--config", str(config),
                        cwd=tmp_path)  # fmt: skip
    assert wrote.returncode == 0, wrote
    read = f"the register in {location} (the config {config})"
    assert wrote.stdout.strip() == f"wrote {out / 'TASKS.md'} and {out / 'MISSIONS.md'} from {read}"
    assert sorted(p.name for p in out.iterdir()) == ["MISSIONS.md", "TASKS.md"]  # no temp left
    tasks = (out / "TASKS.md").read_text()
    missions = (out / "MISSIONS.md").read_text()
    for text in (tasks, missions):
        assert "generated by `fleetwarden tasks --markdown`" in text.splitlines()[0]
        kinds = {token.type for token in tokens(text)}
        assert not kinds & {"image", "link_open", "html_inline", "html_block", "fence"}, kinds
        assert "<img" not in text
        assert SECRET not in text and SECRET[:20] not in text  # redacted, as on every surface
    assert [line for line in tasks.splitlines() if line.startswith("#")] == [
        "# Tasks", "## Todo (2)", "## Working (1)", "## Done (1)",
    ]  # fmt: skip
    assert "4 tasks: 2 todo, 1 working, 1 done." in tasks
    assert "actual: 4,333 tokens, $0.05 (1 run)" in tasks  # the metered usage, to the token
    assert "\\# Fix" not in tasks and "— # Fix \\[it\\](javascript:x)" in tasks
    assert [line for line in missions.splitlines() if line.startswith("#")] == [
        "# Missions",
        "## Authentication rework — auth (mission 1)",
        "### The login page — login (mission 2)",
        "## Docs — docs (mission 3)",
    ]
    assert "- progress: 1 of 2 done (1 working, 1 done)" in missions
    assert "2 tasks in no mission: see TASKS.md." in missions
    # Written again over the same register: the same bytes, and the mode of a new file.
    again = fleetwarden("tasks", "--markdown", "--config", str(config), cwd=out)
    assert again.returncode == 0, again
    assert (out / "TASKS.md").read_text() == tasks
    assert (out / "MISSIONS.md").read_text() == missions
    assert (out / "TASKS.md").stat().st_mode & 0o777 == 0o666 & ~_umask()

    one = fleetwarden("tasks", "--markdown", "--mission", "auth", "--out", str(tmp_path),
                      "--config", str(config), cwd=tmp_path)  # fmt: skip
    assert one.returncode == 0, one
    scoped = (tmp_path / "TASKS.md").read_text()
    assert "# Tasks of mission auth" in scoped and "2 tasks: 1 working, 1 done." in scoped
    assert "Loose end" not in scoped
    manifest = (tmp_path / "MISSIONS.md").read_text()
    assert "## Authentication rework — auth (mission 1)" in manifest
    assert "Docs" not in manifest and "in no mission" not in manifest


async def test_a_bad_out_or_mission_is_said_with_its_fix_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    location = LedgerLocation(tmp_path / "state" / "ledger.db")
    await register(location, tmp_path)
    config = str(config_for(tmp_path, location))
    out = tmp_path / "docs"
    out.mkdir()
    (out / "TASKS.md").write_text("kept\n")

    def refused(*args: str) -> str:
        done = fleetwarden("tasks", "--markdown", *args, "--config", config, cwd=tmp_path)
        assert done.returncode == 2, done
        assert done.stdout == ""
        assert sorted(p.name for p in out.iterdir()) == ["TASKS.md"]
        assert (out / "TASKS.md").read_text() == "kept\n"
        return done.stderr

    said = refused("--out", str(tmp_path / "missing"))
    assert "no such directory; make it first (mkdir -p" in said
    said = refused("--out", str(out / "TASKS.md"))
    assert "is a file, not a directory" in said
    said = refused("--out", str(out), "--mission", "auht")
    assert "no mission is called so — did you mean 'auth'?" in said
    said = refused("--out", str(out), "--mission", "zzzzzz")
    assert "the register has 'auth', 'login', 'docs'" in said
    if os.geteuid() != 0:  # root may write anywhere
        out.chmod(0o500)
        try:
            said = refused("--out", str(out))
        finally:
            out.chmod(0o700)
        assert "this user may not write there" in said

    data = fleetwarden("tasks", "--json", "--out", str(out), "--config", config, cwd=tmp_path)
    assert data.returncode == 2 and data.stdout == "", data
    assert "--out is for --markdown: --json and --csv print to standard output" in data.stderr
    plain = fleetwarden("tasks", "--config", config, cwd=tmp_path)  # chat's, asked of no one
    assert plain.returncode == 3 and "fleetwarden tasks --markdown" in plain.stderr, plain
    elsewhere = tmp_path / "other.yaml"
    elsewhere.write_text(f"state_dir: {tmp_path / 'nothing'}\n")
    none = fleetwarden("tasks", "--markdown", "--out", str(out), "--config", str(elsewhere),
                       cwd=tmp_path)  # fmt: skip
    assert none.returncode == 1 and "has not run with this config yet" in none.stderr, none
    assert not (tmp_path / "nothing" / "ledger.db").exists()  # no ledger made


def git_init(path: Path) -> None:
    """Make ``path`` a git checkout, as `git init` does."""
    subprocess.run(["git", "init", "-q", str(path)], check=True, timeout=30)


async def test_without_config_it_names_the_default_register_and_never_writes_a_checkout(
    tmp_path: Path,
) -> None:
    """No --config: the answer says the default state dir's register was read; run in a git
    checkout without --out it writes nothing there and says how to (`--out .`), and does
    with it; with no register there, it names --config."""
    clone = tmp_path / "clone"
    (clone / "sub").mkdir(parents=True)
    git_init(clone)
    await register(LedgerLocation(clone / "sub" / ".fleetwarden" / "ledger.db"), tmp_path)
    refused = fleetwarden("tasks", "--markdown", cwd=clone / "sub")
    assert refused.returncode == 2, refused
    assert f"is in the git checkout {clone.resolve()}" in refused.stderr
    assert "`--out .` writes here" in refused.stderr
    assert sorted(p.name for p in (clone / "sub").iterdir()) == [".fleetwarden"]
    here = fleetwarden("tasks", "--markdown", "--out", ".", cwd=clone / "sub")
    assert here.returncode == 0, here
    assert f"from the register in {clone / 'sub' / '.fleetwarden' / 'ledger.db'}" in here.stdout
    assert "(no --config and no FLEETWARDEN_CONFIG: the default state dir's" in here.stdout
    assert (clone / "sub" / "TASKS.md").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    none = fleetwarden("tasks", "--markdown", cwd=empty)
    assert none.returncode == 1 and "no --config was given" in none.stderr, none
    assert sorted(empty.iterdir()) == []


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask
