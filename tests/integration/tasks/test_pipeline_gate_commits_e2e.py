"""A pipeline's gate is of a commit, through the real ``fleetwarden run`` console, ``command``
agents on a real repository behind ``git http-backend``: the stage's agent, restarted after
its gate was taken, commits again and pushes through its door. An ``approve`` asked about
commit C is not passed by ``mission approve`` once the line is at D (refused with D, asked
again on D); approved at D, the next stage is told D; a later commit E withdraws the pass
(asked again) and ``merge`` refuses E. A ``check:`` that passed C is taken again on the
later commit D, which fails it: the mission stops and ``merge`` never lands D. A ``check:``
of the real Claude Code's live session is not taken when its turn is over, only once its
run ends."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn
from tests.git_upstream import GitUpstream
from tests.integration.components import console_bot_on_app
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where, wait_until
from tests.integration.forge_rig import E2E_KEY, bash, write
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.integration.runtimes.test_real_clis import cli

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_pipelineGateCommitsUpstreamToken00000"
SHA = r"([0-9a-f]{12})"
# Run 1 leaves run-1.txt (kept as the run's end commit); each later run (a restart) commits
# run-N.txt holding WORD, pushes it through its door and waits for `send AGENT go`.
LATER = (
    "n=$(( $(ls run-*.txt 2>/dev/null | wc -l) + 1 )); "
    'if [ "$n" -eq 1 ]; then echo good > run-1.txt; else '
    'echo {word} > run-$n.txt && git add run-$n.txt && git commit -qm "run $n" && '
    "git push -q origin HEAD && echo PUSHED-$n; read go; fi"
)
CONFIG = f"""\
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, '{LATER.format(word="more")}']
  - name: builder
    runtime: command
    repo: app
    argv: [sh, -c, '{LATER.format(word="BAD")}']
  - name: checker
    runtime: command
    repo: app
    argv: [sh, -c, 'printf "%s\\n" "$FLEETWARDEN_PROMPT" > review.txt']
pipelines:
  asked:
    stages:
      code: {{agent: coder, gate: approve}}
      review: {{agent: checker}}
  checked:
    stages:
      code:
        agent: builder
        gate: {{check: [sh, -c, '! grep -l BAD run-*.txt']}}
      review: {{agent: checker}}
"""


def _log(root: Path, agent: str) -> str:
    path = root / "state" / "agents" / agent / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _pushed(bot: ConsoleBot, root: Path, agent: str, run: int) -> None:
    """``agent`` restarted: its run ``run`` pushed a commit through its door, and waits."""
    bot.command(f"restart {agent}", agent)
    assert wait_until(lambda: f"PUSHED-{run}" in _log(root, agent), timeout=90), _log(root, agent)


def test_an_approval_is_of_the_commit_it_was_asked_about(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """A commit after the ask: `mission approve` is refused naming the sha now and asks
    again; approved there, the next stage is told that commit; a commit after the pass is
    asked about again and `merge` refuses it."""
    bot = console_bot_on_app(tmp_path, upstream, TOKEN, CONFIG)
    with bot:
        bot.command("mission new m --pipeline asked Greet the user", r"Mission m made", 90)
        ask = bot.expect(r"stage \W*code\W* \(task [^\n]*fw/coder/1[^\n]*", timeout=90)
        shown = re.search(rf"at commit {SHA}\)", ask.group(0))  # checked once it is refused
        said = bot.output_since_command
        _pushed(bot, tmp_path, "coder", 2)
        bot.command("mission approve m code", r"nothing was approved|passed its gate")
        refused = bot.output_since_command
        assert "passed its gate" not in refused, refused
        later = re.search(rf"was asked about commit {SHA}, and its line is at {SHA}", refused)
        assert later is not None, refused
        assert shown is not None, ask.group(0)  # the ask named the commit it asked about
        assert "mission approve m code approves that commit" in said
        first, second = shown.group(1), later.group(2)
        assert later.group(1) == first
        assert second != first
        assert f"mission approve m code approves {second}" in refused
        again = bot.expect(rf"moved from {first} to {second} since it asked about it: asked again")
        assert f"at commit {second}" in bot.stdout[again.start() :]
        bot.command("send coder go", r"coder")
        bot.command("mission approve m code", r"Stage code of mission m passed its gate")
        bot.expect(r"Mission m: every stage passed its gate", timeout=90)
        told = next(tmp_path.rglob("review.txt")).read_text()
        assert re.search(rf"Commit: {second}[0-9a-f]{{28}} \(what its gate judged", told), told
        _pushed(bot, tmp_path, "coder", 3)
        bot.command("send coder go", r"coder")
        moved = bot.expect(rf"moved from {second} to {SHA} since it passed it: asked again", 90)
        third = moved.group(1)
        bot.command("merge fw/coder/1", r"which no gate passed|Merged into", timeout=60)
        held = bot.output_since_command
        assert "Merged into" not in held, held
        assert f"is at {third}, which no gate passed" in held
        assert "mission approve m code passes it" in held and "Nothing was merged" in held
        assert "run-3.txt" not in upstream.show("app", "ls-tree", "--name-only", "main")
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0


def test_a_check_is_taken_again_on_a_later_commit(tmp_path: Path, upstream: GitUpstream) -> None:
    """The check passes commit C; the agent's later commit D, which its own check fails,
    withdraws the pass: the check runs again on D and fails, the mission stops, and `merge`
    refuses D."""
    bot = console_bot_on_app(tmp_path, upstream, TOKEN, CONFIG)
    with bot:
        bot.command("mission new c --pipeline checked Build it", r"Mission c made", 90)
        bot.expect(r"Mission c: every stage passed its gate", timeout=120)
        bot.command("mission c", r"Stages of pipeline checked")
        shown = bot.output_since_command
        _pushed(bot, tmp_path, "builder", 2)
        bot.command("send builder go", r"builder")
        gone = bot.expect(r"stage \W*code\W*'s check no longer stands: its line fw/builder/1 "
                          rf"moved from {SHA} to {SHA}", timeout=90)  # fmt: skip
        later = gone.group(2)
        passed = re.search(rf"passed \(check .* exited 0 on commit {SHA}", shown)
        assert passed is not None and passed.group(1) == gone.group(1), shown
        bot.expect(r"Mission c stopped at stage \W*code\W*", timeout=90)
        bot.expect(r"exited 1")
        bot.command("merge fw/builder/1", r"which no gate passed|Merged into", timeout=60)
        held = bot.output_since_command
        assert "Merged into" not in held, held
        assert f"is at {later}, which no gate passed" in held and "is failed" in held
        assert "run-2.txt" not in upstream.show("app", "ls-tree", "--name-only", "main")
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0


WAIT = "until [ -e go ]; do sleep 0.2; done"
"""The session's second turn: a command that goes on until it is interrupted."""
SESSION = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
providers:
  anthropic:
    upstream: {provider}
accounts:
  team:
    kind: api_key
    provider: anthropic
    key_env: FW_TEAM_KEY
repos:
  app:
    url: {url}
    token_env: APP_TOKEN
agents:
  - name: coder
    runtime: claude
    account: team
    repo: app
    permissions: full
pipelines:
  live:
    stages:
      code:
        agent: coder
        gate: {{check: [test, -e, work.txt]}}
"""


def test_a_check_waits_for_a_live_sessions_run_to_end(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """The real Claude Code's turn is over (interrupted) while its session goes on: the
    stage's check is not taken then — the agent may still write its checkout — but once
    its run ends."""
    cli("claude")
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    accept = Accepted(api_keys=frozenset({E2E_KEY}))
    turns = (write(checkout / "work.txt", "done\n"), bash(WAIT))
    with fake_provider_thread(*turns, default=Turn(text="(no more turns)"), accept=accept) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(SESSION.format(provider=fake.base_url, url=upstream.url("app")))
        env = clean_env(PATH=agent_path(), FW_TEAM_KEY=E2E_KEY, APP_TOKEN=TOKEN)
        bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
        try:
            bot.command("mission new s --pipeline live Write it", r"Mission s made", 90)
            assert wait_until(lambda: len(fake.requests) >= 2, timeout=120), bot.stdout[-2000:]
            assert (checkout / "work.txt").exists()
            bot.command("interrupt coder", r"coder")
            held = re.compile(r"its check runs once run \d+ of coder ends")
            said: list[str] = []

            def waits() -> bool:
                said.append(bot.command("mission s", r"Stages of pipeline live").string)
                return bool(held.search(bot.output_since_command))

            assert wait_until(waits, timeout=120), bot.stdout[-3000:]
            assert "every stage passed" not in bot.stdout  # not taken at the turn's end
            bot.command("stop coder", r"coder")
            bot.expect(r"Mission s: every stage passed its gate", timeout=120)
            assert bot.close() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
            work = str(tmp_path / "state")
            for pid in processes_where(
                lambda cwd, cmd: cwd.startswith(work) or work.encode() in cmd
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
