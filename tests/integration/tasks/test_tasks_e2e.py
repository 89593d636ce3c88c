"""A mission from its making to done, end to end through the real ``fleetwarden run``, the
real Claude Code against the strict fake provider, the strict fake GitHub and a real git
upstream: a mission of three tasks — two made in chat, the second waiting on the first, and
one a labelled forge issue put in the mission — each task's projection stored as it is made
and never changed by its runs, each run bound to its task, a session's turn over putting its
task up for review, ``task done`` stopping the run and starting what waited, the forge task
done when its pull request is merged; Fleetwarden restarted mid-task loses nothing; every
task's actual is its runs' metered usage to the token; the mission sums them, and the board
shows them in Chromium. The same chat part on PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.config.dashboard import OWN_NAME_FILE
from fleet.budgets.quoting.words import usd
from tests import sandbox_need
from tests.fakes.forge.webhook_sender import github_delivery, github_issue, github_pull
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn, Usage
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where, wait_until
from tests.integration.dashboard_rig import LINK, browser, need_chromium, sign_in, watch
from tests.integration.forge_rig import E2E_KEY, bash, listening, post, write
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.integration.runtimes.test_real_clis import cli
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_missionUpstreamTokenNoAgentHolds012345"  # the git upstream's
SECRET = b"mission-webhook-secret-0123456789abcdef"
MODEL = "claude-sonnet-4-5"
# 30 000 tokens and $0.21 a request (20 000 in at $3/M, 10 000 out at $15/M).
USAGE = Usage(input=20_000, output=10_000)
WAIT = "until [ -e go ]; do sleep 0.2; done"
"""What the first task's run does first: wait, so Fleetwarden restarts while it works."""
HOSTILE = "Announce it <img src=x onerror=alert(1)> @room [win](https://evil.example)"
CONFIG = """\
state_dir: ./state
{ledger}connectors:
  console: {{user_id: ann}}
operators:
  - {{id: ann, role: admin, connector: console}}
defaults:
  stop_grace_seconds: 1
providers:
  anthropic:
    upstream: {provider}
prices:
  {model}: {{input: 3.0, output: 15.0}}
accounts:
  team:
    kind: api_key
    provider: anthropic
    key_env: FW_TEAM_KEY
dashboard:
  listen: 127.0.0.1:{port}
"""
FORGE = """\
forges:
  gh:
    kind: github
    api_url: {api}
    token_env: FORGE_TOKEN
    webhook_secret_env: FORGE_HOOK_SECRET
    login: {login}
    agent: coder
repos:
  app:
    url: {url}
    token_env: APP_TOKEN
    forge: gh
    forge_repo: acme/app
"""
AGENTS = """\
agents:
  - name: writer
    runtime: claude
    model: {model}
    account: team
    permissions: full
"""
CODER = """\
  - name: coder
    runtime: claude
    model: {model}
    account: team
    repo: app
    permissions: full
"""
_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"
_PROJECTED = (
    "basis, basis_tasks, projected_median_tokens, projected_p90_tokens,"
    " projected_median_usd, projected_p90_usd"
)
_USAGE_OF_TASK = f"""SELECT COALESCE(SUM({_TOKENS}), 0),
        SUM(CASE WHEN u.priced = 1 THEN u.cost_usd END) FROM usage u
    JOIN runs r ON u.agent = r.agent AND u.at >= r.started_at
        AND (r.ended_at IS NULL OR u.at <= r.ended_at)
    JOIN task_runs t ON t.run_id = r.id WHERE t.task_id = ?"""

Rows = Callable[..., list[tuple[Any, ...]]]


def reader(tmp_path: Path, dsn: str | None) -> Rows:
    """Rows of a query (``?`` for its parameters) over the bot's ledger, on either engine."""

    def rows(sql: str, *params: object) -> list[tuple[Any, ...]]:
        if dsn is not None:
            with psycopg.connect(dsn) as pg:
                return list(pg.execute(sql.replace("?", "%s"), params).fetchall())
        path = tmp_path / "state" / "ledger.db"
        lite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return lite.execute(sql, params).fetchall()
        finally:
            lite.close()

    return rows


class Mission:
    """The running ``fleetwarden run`` over one config, restarted as asked; every agent it
    started killed at the end, since agents outlive Fleetwarden by design."""

    def __init__(self, tmp_path: Path, config: str, provider: FakeProvider) -> None:
        self.root, self.provider = tmp_path, provider
        self.config = tmp_path / "fleetwarden.yaml"
        self.config.write_text(config)
        tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": DEFAULT_PAT}
        self.env = clean_env(
            PATH=agent_path(), FW_TEAM_KEY=E2E_KEY, FORGE_HOOK_SECRET=SECRET.decode(), **tokens
        )
        self.bot = self.started()

    def started(self) -> ConsoleBot:
        return ConsoleBot(self.root, "--config", str(self.config), env=self.env)

    def restart(self) -> None:
        """Stop Fleetwarden mid-task (its agents run on) and start it again."""
        assert self.bot.close(timeout=60) == 0, self.bot.stderr[-3000:]
        self.bot = self.started()

    def close(self) -> None:
        if self.bot.proc.poll() is None:
            self.bot.kill()
        work = str(self.root / "state")
        for pid in processes_where(
            lambda cwd, cmdline: cwd.startswith(work) or work.encode() in cmdline
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def state_of(rows: Rows, task: int) -> str:
    found = rows("SELECT state FROM tasks WHERE id = ?", task)
    return str(found[0][0]) if found else ""


def until_state(mission: Mission, rows: Rows, task: int, state: str, timeout: float = 120) -> None:
    assert wait_until(lambda: state_of(rows, task) == state, timeout=timeout), (
        state_of(rows, task),
        mission.bot.stdout[-3000:],
        mission.bot.stderr[-3000:],
    )


def chat_part(mission: Mission, rows: Rows) -> dict[int, tuple[Any, ...]]:
    """A mission with two chat tasks, the second waiting on the first: Fleetwarden restarted
    while the first's run works, the first done as its run ends, the second started by
    itself and done; each task's projection as it was stored when it was made."""
    bot = mission.bot
    bot.command("mission new release Ship 2.0", r"Mission release made: Ship 2\.0")
    bot.command(
        "task new --agent writer --mission release Draft the changelog",
        r"Task #1 draft-the-changelog made: no projection yet",
    )
    bot.command(
        f"task new --agent writer --mission release --after 1 {HOSTILE}",
        r"Task #2 announce-it-img-src-x made",
    )
    stored = {t: rows(f"SELECT {_PROJECTED} FROM tasks WHERE id = ?", t)[0] for t in (1, 2)}
    bot.command("task start 2", r"Task #2 \S+ waits for #1 draft-the-changelog \(todo\)")
    go = mission.root / "state" / "agents" / "writer" / "work" / "go"
    mission.provider.add(
        Turn(text="", tool=ToolCall("Bash", {"command": WAIT, "description": "wait"}), usage=USAGE),
        Turn(text="The changelog is drafted.", usage=USAGE),
    )
    bot.command("task start 1", r"Agent writer started")
    bot.expect(r"Task #1 draft-the-changelog · no projection yet")
    assert wait_until(lambda: len(mission.provider.requests) >= 1, timeout=60)
    [(run_1,)] = rows("SELECT run_id FROM task_runs WHERE task_id = 1")
    assert state_of(rows, 1) == "working"

    mission.restart()  # mid-task: its run goes on, the register is the ledger's
    bot = mission.bot
    bot.command("task 1", r"Task #1 draft-the-changelog\W* · working")
    assert rows("SELECT run_id FROM task_runs WHERE task_id = 1") == [(run_1,)]
    assert rows("SELECT ended_at FROM runs WHERE id = ?", run_1) == [(None,)]
    bot.command("tasks --mission release", r"#2 \S+ · queued · writer")

    # Its run finishes: the task is done (it changed no branch), and the one that waited
    # starts by itself, here.
    mission.provider.add(Turn(text="Announced.", usage=USAGE))
    go.write_text("")
    until_state(mission, rows, 1, "done")
    bot.expect(r"What task #2 waited for is done; started now:", timeout=60)
    until_state(mission, rows, 2, "done")
    assert rows("SELECT ended_at IS NOT NULL FROM runs WHERE id = ?", run_1) == [(True,)]
    bot.command("task 1", r"Task #1 draft-the-changelog\W* · done")
    bot.expect(r"actual 60,000 tokens")
    return stored


def check_actuals(rows: Rows, tasks: list[int]) -> None:
    """Each task's actual, kept when it ended, is its runs' metered usage to the token, and
    together they are everything the fake provider was asked for."""
    total = 0
    for task in tasks:
        [(kept, kept_usd)] = rows("SELECT actual_tokens, actual_usd FROM tasks WHERE id = ?", task)
        [(metered, priced)] = rows(_USAGE_OF_TASK, task)
        assert kept == metered and kept > 0, (task, kept, metered)
        assert kept_usd == pytest.approx(priced), (task, kept_usd, priced)
        total += kept
    [(everything,)] = rows(f"SELECT COALESCE(SUM({_TOKENS}), 0) FROM usage")
    assert total == everything


def test_a_mission_from_chat_and_the_forge_to_done_on_the_board(
    tmp_path: Path, upstream: GitUpstream, github: FakeGitHub
) -> None:
    cli("claude")
    need_chromium()
    rows = reader(tmp_path, None)
    accept = Accepted(api_keys=frozenset({E2E_KEY}))
    with fake_provider_thread(default=Turn(text="(no more turns)"), accept=accept) as provider:
        port = free_port()
        config = (CONFIG + FORGE + AGENTS + CODER).format(
            ledger="", provider=provider.base_url, model=MODEL, port=port,
            api=github.api_url, login=BOT_LOGIN, url=upstream.url("app"),
        )  # fmt: skip
        mission = Mission(tmp_path, config, provider)
        try:
            assert wait_until(lambda: listening(port), timeout=60), mission.bot.stderr
            stored = chat_part(mission, rows)
            forge_part(mission, rows, github, port)
            stored[3] = rows(f"SELECT {_PROJECTED} FROM tasks WHERE id = 3")[0]
            for task, projection in stored.items():  # unchanged by the runs
                assert rows(f"SELECT {_PROJECTED} FROM tasks WHERE id = ?", task)[0] == projection
            # The forge task was made after the two finished: projected from them.
            assert stored[3][0] == "every task" and stored[3][1] == "2,1"
            assert stored[3][2] == 45_000.0  # the median of 60,000 and 30,000
            check_actuals(rows, [1, 2, 3])
            bot = mission.bot
            bot.command("mission release", r"Mission release — Ship 2\.0\n3 of 3 done")
            board(mission, port, float(stored[3][4]))
            bot.close()
        finally:
            mission.close()


def forge_part(mission: Mission, rows: Rows, github: FakeGitHub, port: int) -> None:
    """A labelled issue becomes the mission's third task; its pull request merged, done."""
    checkout = mission.root / "state" / "checkouts" / "app" / "coder-1"
    mission.provider.add(
        write(checkout / "CHANGELOG.md", "2.0: shipped\n"),
        bash('fw-forge done ok "Wrote the changelog file."'),
        Turn(text="Done.", usage=USAGE),
    )
    issue = github.add_issue(
        str(SLUG), "Put the changelog in the repo", "As CHANGELOG.md.", author=WRITER,
        labels=["fleetwarden:coder"],
    )  # fmt: skip
    labeled = github_issue(
        "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
        title="Put the changelog in the repo", body="As CHANGELOG.md.", label="fleetwarden:coder",
    )  # fmt: skip
    headers, body = github_delivery(*labeled, secret=SECRET, delivery="mission-1")
    assert post(port, "gh", headers, body)[0] == 202
    assert wait_until(lambda: len(github.pulls(str(SLUG))) == 1, timeout=180), (
        mission.bot.stdout[-3000:] + mission.bot.stderr[-3000:]
    )
    until_state(mission, rows, 3, "review")
    assert rows("SELECT source, forge_run IS NOT NULL FROM tasks WHERE id = 3") == [("forge", True)]
    mission.bot.command("mission add release 3", r"Mission release now has #3 ")
    [pull] = github.pulls(str(SLUG))
    github.merge_pull(str(SLUG), pull.number, by=WRITER)
    closed = github_pull(
        "closed", repo=SLUG, number=pull.number, sender=WRITER, head="fw/coder/issue-1",
        merged=True,
    )  # fmt: skip
    headers, body = github_delivery(*closed, secret=SECRET, delivery="mission-2")
    assert post(port, "gh", headers, body)[0] == 202
    until_state(mission, rows, 3, "done", timeout=60)


def board(mission: Mission, port: int, projected: float) -> None:
    """The mission's board in Chromium: its three tasks in the done column, each with its
    projection beside its actual, the hostile title as text."""
    link = re.compile(LINK.pattern.replace(r"\d+", str(port)))
    signin = mission.bot.command("dashboard", link.pattern).group(1)
    name = (mission.root / "state" / OWN_NAME_FILE).read_text().strip()
    with browser() as chromium:
        page = chromium.new_page()
        seen = watch(page)
        sign_in(page, signin)
        page.goto(f"http://{name}:{port}/tasks?mission=release")
        page.wait_for_selector(".board .card")
        cards = page.evaluate(
            """() => [...document.querySelectorAll('.board .card')].map(card => ({
                task: card.dataset.task,
                state: card.closest('.column').dataset.state,
                title: card.querySelector('.card-title').textContent,
                spend: card.querySelector('.spend').textContent,
            }))"""
        )
        assert sorted(card["task"] for card in cards) == ["1", "2", "3"]
        assert {card["state"] for card in cards} == {"done"}
        by_id = {card["task"]: card for card in cards}
        assert HOSTILE[:40] in by_id["2"]["title"]
        assert page.query_selector(".board img") is None  # the title wrote no element
        assert "actual $0.42" in by_id["1"]["spend"], by_id["1"]
        assert f"projected {usd(projected)}" in by_id["3"]["spend"], by_id["3"]
        page.screenshot(path=str(mission.root / "board.png"), full_page=True)
        assert seen.errors == []


def test_the_chat_part_of_a_mission_on_postgresql(tmp_path: Path, postgres_dsn: str) -> None:
    """The same mission's chat part with the ledger in PostgreSQL: projections kept, the
    restart mid-task losing nothing, the actuals the metered usage to the token."""
    cli("claude")
    rows = reader(tmp_path, postgres_dsn)
    accept = Accepted(api_keys=frozenset({E2E_KEY}))
    with fake_provider_thread(default=Turn(text="(no more turns)"), accept=accept) as provider:
        port = free_port()
        config = (CONFIG + AGENTS).format(
            ledger=f"ledger: {postgres_dsn}\n", provider=provider.base_url, model=MODEL,
            port=port,
        )  # fmt: skip
        mission = Mission(tmp_path, config, provider)
        try:
            assert wait_until(lambda: listening(port), timeout=60), mission.bot.stderr
            stored = chat_part(mission, rows)
            for task, projection in stored.items():
                assert rows(f"SELECT {_PROJECTED} FROM tasks WHERE id = ?", task)[0] == projection
            check_actuals(rows, [1, 2])
            mission.bot.command("mission release", r"2 of 2 done")
            mission.bot.close()
        finally:
            mission.close()
