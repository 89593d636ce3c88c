"""Agents on repositories through the real ``fleetwarden run`` and its console: the real
Claude Code (against the strict fake provider) writes a file in its run's checkout; the
run's summary shows it with its ``+/−``; ``diff`` shows the hunk; ``merge --squash`` lands
one commit on the upstream's default branch — a real git upstream behind ``git
http-backend`` that takes only its token, which no agent ever holds. And a hostile agent,
sandboxed with its network locked, whose pushes go through the git door: its own branch
is taken, everything else refused and counted, nothing reaches the upstream until an
operator says ``push``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, ToolCall, Turn
from tests.git_upstream import GitUpstream, token_anywhere
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where, wait_until
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.integration.runtimes.test_real_clis import cli

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_e2eUpstreamTokenNoAgentHolds9876543210"
KEY = "fake-repos-key-0123456789abcdefghijklmn"
AWS = "AKIAQYLPMN5HFIQR7XZB"
CONFIG = """\
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
    setup: [sh, -c, "id -u > .git/setup-ran"]
agents:
  - name: coder
    runtime: claude
    account: team
    repo: app
    prompt: write the notes
  - name: rogue
    runtime: command
    repo: app
    argv: [sh, -c, {script}]
"""
# What a prompt-injected agent tries with git, from inside its sandbox. Each attempt prints
# its verdict on one line, for the test to read in its log.
HOSTILE = f"""
try() {{
  what=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$what=taken"; else echo "$what=refused"; fi
}}
echo mine > mine.txt && git add mine.txt && git commit -qm mine
try own git push -q origin HEAD
try main git push -q origin HEAD:main
try other git push -q origin HEAD:refs/heads/fw/coder/1
try tag sh -c 'git tag v9 && git push -q origin v9'
try delete git push -q origin :$(git branch --show-current)
try force sh -c 'git commit -q --amend -m amended && git push -q -f origin HEAD'
git reset -q --hard HEAD@{{1}}
mkdir -p .github/workflows && echo 'on: push' > .github/workflows/ci.yml
try workflow sh -c 'git add .github && git commit -qm ci && git push -q origin HEAD'
git reset -q --hard HEAD~1
echo 'aws_access_key_id = {AWS}' > creds.ini
try secret sh -c 'git add creds.ini && git commit -qm creds && git push -q origin HEAD'
git reset -q --hard HEAD~1
try receivepack git push -q --receive-pack="touch $PWD/receive-pack-ran" origin HEAD
try mirror ls {{state}}/repos
env | grep -c APP_TOKEN || true
sleep 600
"""


def start_bot(tmp_path: Path, upstream: GitUpstream, provider: str) -> ConsoleBot:
    state = tmp_path / "state"
    script = HOSTILE.replace("{state}", str(state))
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        CONFIG.format(provider=provider, url=upstream.url("app"), script=_yaml_str(script))
    )
    return ConsoleBot(
        tmp_path,
        "--config",
        str(config),
        env=clean_env(PATH=agent_path(), FW_TEAM_KEY=KEY, APP_TOKEN=TOKEN),
    )


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def test_a_real_claude_edits_its_checkout_and_merge_lands_one_commit(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    cli("claude")
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    turns = (
        Turn(text="", tool=ToolCall("Write", {
            "file_path": str(checkout / "NOTES.md"),
            "content": "shipped on Friday\nby the fleet\n",
        })),
        Turn(text="Wrote NOTES.md."),
    )  # fmt: skip
    before = upstream.tip("app")
    with fake_provider_thread(
        *turns, default=Turn(text="(no more turns)"), accept=Accepted(api_keys=frozenset({KEY}))
    ) as provider:
        bot = start_bot(tmp_path, upstream, provider.base_url)
        try:
            bot.command("spawn coder", r"coder")
            summary = bot.expect(r"Branch\W+fw/coder/1 of \W*app[^\n]*", timeout=120)
            assert "+2" in summary.group(0)
            assert wait_until(lambda: "NOTES.md" in bot.stdout, timeout=10)
            bot.command("diff coder", r"\+by the fleet")
            assert upstream.pushes() == []  # nothing left Fleetwarden before the merge
            bot.command("merge coder --squash", r"[0-9a-f]{7,}", timeout=60)
            after = upstream.tip("app")
            assert after is not None and after != before
            assert upstream.show("app", "rev-parse", f"{after}^") == before
            assert upstream.show("app", "show", f"{after}:NOTES.md").startswith("shipped")
            trailers = upstream.show("app", "log", "-1", "--format=%B", after)
            assert "Fleetwarden-Agent: coder" in trailers and "Fleetwarden-Run:" in trailers
            assert token_anywhere(TOKEN, tmp_path / "state") == []
            assert TOKEN not in bot.stdout
            bot.close()
        finally:
            if bot.proc.poll() is None:
                bot.kill()


def test_a_hostile_agent_gets_only_its_own_branch_and_nothing_upstream_until_push(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    with fake_provider_thread(default=Turn(text="-")) as provider:
        bot = start_bot(tmp_path, upstream, provider.base_url)
        log = tmp_path / "state" / "agents" / "rogue" / "output.log"
        try:
            bot.command("spawn rogue", r"rogue")

            def said() -> str:
                try:
                    return log.read_text(errors="replace")
                except OSError:
                    return ""

            assert wait_until(lambda: "mirror=" in said(), timeout=120), said()
            verdicts = dict(
                line.split("=", 1)
                for line in said().splitlines()
                if "=" in line and " " not in line
            )
            assert verdicts["own"] == "taken"
            for attempt in ("main", "other", "tag", "delete", "force", "workflow", "secret"):
                assert verdicts[attempt] == "refused", (attempt, said())
            assert verdicts["mirror"] == "refused"
            checkout = tmp_path / "state" / "checkouts" / "app" / "rogue-1"
            setup = (checkout / ".git" / "setup-ran").read_text().strip()
            assert setup != "0" if os.geteuid() == 0 else setup  # run as the agent, first
            assert verdicts["receivepack"] == "taken"  # an up-to-date push: the option is
            assert not (checkout / "receive-pack-ran").exists()  # never run over HTTP
            assert AWS not in said() or "creds.ini" in said()
            assert upstream.pushes() == []
            bot.command("egress rogue", r"git")  # refusals are counted like egress ones
            shown = bot.output_since_command
            assert "refused" in shown
            bot.command("stop rogue", r"[Ss]topped rogue", timeout=30)
            bot.command("push rogue", r"Pushed", timeout=60)
            assert "refs/heads/fw/rogue/1" in upstream.branches("app"), bot.output_since_command
            assert upstream.show("app", "show", "refs/heads/fw/rogue/1:mine.txt") == "mine"
            assert upstream.tip("app") == upstream.show("app", "rev-parse", "main")
            assert token_anywhere(TOKEN, tmp_path / "state") == []
            bot.close()
        finally:
            checkout = str(tmp_path / "state" / "checkouts" / "app" / "rogue-1")
            for pid in processes_where(lambda cwd, cmd: cwd == checkout and b"sleep" in cmd):
                os.kill(pid, signal.SIGKILL)
            if bot.proc.poll() is None:
                bot.kill()
