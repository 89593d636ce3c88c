"""Agents that work together, end to end, through the real ``fleetwarden run``: an issue
labelled ``fleetwarden:coder`` on the strict fake GitHub becomes a run of the real Claude
Code (``coder``), which hands a sub-task to a third agent (``migrator``, the real Claude
Code on an SSH host, a real OpenSSH server on 127.0.0.2) with ``fw-msg task``; the migrator
answers it with ``fw-msg send coder … --verify`` through the host's forward, ACCEPTED once
it is in coder's session. Coder's ``fw-forge done`` opens a draft pull request and asks the
repository's review agent (``reviewer``, the real Claude Code in its own read-only checkout
of the pushed commit): it asks for changes once, coder's session takes them and pushes its
second commit, and the reviewer approves that one — the pull request turns ready, carrying
whose verdict it was. Every message shows in chat (the console) and on the dashboard's
API; the reviewer's and the migrator's spend count on tasks. The strict fake provider
answers each agent from its own script, knowing it by its prompt's first line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.forge.webhook_sender import github_delivery, github_issue
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.fakes.provider.background import fake_provider_by_agent_thread
from tests.fakes.provider.server import Accepted, Turn
from tests.git_upstream import GitUpstream, token_anywhere
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.dashboard_rig import Rig
from tests.integration.forge_rig import app_on_github, bash, ledger_rows, listening, post, write
from tests.integration.hosts.test_hosts_e2e import _until
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir
from tests.postgres_server import free_port
from tests.sshd_server import SshServer

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli, sandbox_need.BWRAP]

KEY = "fake-peers-key-0123456789abcdefghijklmn"
TOKEN = "ghp_peersUpstreamTokenNoAgentHolds12345678"
SECRET = "peers-webhook-secret-0123456789abcdef"
WAIT = 240.0

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
  team: {{kind: api_key, provider: anthropic, key_env: FW_TEAM_KEY}}
dashboard:
  listen: 127.0.0.1:{port}
hosts:
  - {{name: box2, ssh: '{ssh}', key_file: '{key}', known_hosts: '{known}',
     state_dir: {host_state}, path: ['{bin}', '{node}']}}
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
    review: {{agent: reviewer, rounds: 2}}
agents:
  - name: coder
    runtime: claude
    account: team
    repo: app
    permissions: full
    role: writes the app's code
    talks_to: [migrator]
  - name: reviewer
    runtime: claude
    account: team
    permissions: full
    role: reviews the app's pull requests before a human does
  - name: migrator
    runtime: claude
    account: team
    host: box2
    permissions: full
    egress_allow: []
    role: writes the database's migrations
    talks_to: [coder]
"""


def _scripts(checkout: Path) -> dict[str, list[Turn]]:
    return {
        "coder": [
            bash(
                'fw-msg task migrator "Add the users table" "A migration adding users(id, name)."'
            ),
            write(checkout / "NOTES.md", "shipped on Friday\n"),
            bash('fw-forge done ok "Wrote the release notes."'),
            Turn(text="Done: the notes are written."),
            write(checkout / "NOTES.md", "shipped on Friday\nby the fleet\n"),
            bash('fw-forge done ok "Said who shipped it, as the review asked."'),
            Turn(text="Done again."),
        ],
        "reviewer": [
            bash('fw-msg review changes "Say who shipped it."'),
            Turn(text="Asked for changes."),
            bash('fw-msg review approve "It says when and who: ready for a human."'),
            Turn(text="Approved."),
        ],
        "migrator": [
            bash('fw-msg send coder "The users migration is written." --verify'),
            Turn(text="Told coder."),
        ],
    }


def test_two_agents_and_a_third_on_a_host_hand_work_on_review_it_and_a_pr_turns_ready(
    tmp_path: Path, upstream: GitUpstream, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    cli("claude")
    host, _ = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    checkout = tmp_path / "state" / "checkouts" / "app" / "coder-1"
    answered = {"> The users migration is written.": Turn(text="Noted: the migration is in.")}
    with (
        app_on_github(upstream, SLUG, WRITER) as github,
        fake_provider_by_agent_thread(
            _scripts(checkout),
            default=Turn(text="(no more turns)"),
            accept=Accepted(api_keys=frozenset({KEY})),
            answers=answered,
        ) as provider,
    ):
        port = free_port()
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            CONFIG.format(
                provider=provider.base_url,
                port=port,
                ssh=host.ssh_target,
                key=host.client_key,
                known=known,
                host_state=host.state_dir("fw-peers")[0],
                bin=bin_dir(),
                node=node_dir(),
                api=github.api_url,
                login=BOT_LOGIN,
                url=upstream.url("app"),
            )
        )
        tokens = {"APP_TOKEN": TOKEN, "FORGE_TOKEN": DEFAULT_PAT, "FORGE_HOOK_SECRET": SECRET}
        env = clean_env(PATH=agent_path(), FW_TEAM_KEY=KEY, **tokens)
        bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
        try:
            assert wait_until(lambda: listening(port), timeout=60), bot.stderr
            _until(bot, "hosts", r"^box2 +up .*claude", within=60)  # probed: claude there
            _run(tmp_path, bot, port, github, upstream, provider.served)
            bot.close()
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    assert token_anywhere(DEFAULT_PAT, tmp_path / "state") == []
    assert token_anywhere(TOKEN, tmp_path / "state") == []
    assert KEY not in bot.stdout + bot.stderr


def _run(
    root: Path,
    bot: ConsoleBot,
    port: int,
    github: FakeGitHub,
    upstream: GitUpstream,
    served: object,
) -> None:
    issue = github.add_issue(
        str(SLUG), "Write the release notes", "Say when we shipped.", author=WRITER,
        labels=["fleetwarden:coder"],
    )  # fmt: skip
    labeled = github_issue(
        "labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
        title="Write the release notes", body="Say when we shipped.", label="fleetwarden:coder",
    )  # fmt: skip
    name, payload = labeled
    headers, body = github_delivery(name, payload, secret=SECRET.encode())
    assert post(port, "gh", headers, body)[0] == 202

    def messages() -> list[tuple[str, str, str, str]]:
        return [
            (str(s), str(r), str(k), str(st))
            for s, r, k, st in ledger_rows(
                root, "SELECT sender, receiver, kind, state FROM messages ORDER BY id"
            )
        ]

    def reviews() -> list[tuple[int, str]]:
        return [(int(n), str(s)) for n, s in ledger_rows(root, "SELECT round, state FROM reviews")]

    # Coder hands the migration on; the migrator, on box2, tells it so, ACCEPTED.
    def said() -> str:
        return bot.stdout + bot.stderr

    assert wait_until(
        lambda: ("migrator", "coder", "message", "delivered") in messages(), timeout=WAIT
    ), said()
    [(task_agent, task_state, task_source)] = ledger_rows(
        root, "SELECT agent, state, source FROM tasks WHERE source = 'task'"
    )
    assert task_agent == "migrator" and task_source == "task", task_state
    assert wait_until(lambda: ("coder", "migrator", "task", "delivered") in messages(), timeout=60)
    [(host_of,)] = ledger_rows(root, "SELECT DISTINCT host FROM usage WHERE agent = 'migrator'")
    assert host_of == "box2"

    # Round 1: changes, back into coder's session; round 2: approved; the PR is ready.
    assert wait_until(lambda: reviews() == [(1, "changes"), (2, "approved")], timeout=WAIT), (
        f"{reviews()}\n{said()}"
    )
    [pull] = github.pulls(str(SLUG))
    assert wait_until(lambda: not github.is_draft(str(SLUG), pull.number), timeout=60), said()
    branch = "refs/heads/fw/coder/issue-1"
    tip = upstream.branches("app")[branch]
    assert upstream.show("app", "show", f"{tip}:NOTES.md").endswith("by the fleet")
    posted = github.reviews_of(str(SLUG), pull.number)
    ours = [text for author, _state, text in posted if author == BOT_LOGIN]
    assert ours and "reviewer" in ours[-1] and "not a human" in ours[-1], posted

    # Chat saw every message, between both agents' names.
    bot.command("msgs", r"(?s)reviewer.*coder")
    shown = bot.output_since_command
    for pair in ("coder → migrator", "migrator → coder", "reviewer → coder"):
        assert pair in said(), pair
    assert "[task #" in shown and "[review of task #" in shown, shown
    # And the dashboard's API has them as data.
    rig = Rig(root, bot, port, fake=None, config=root / "fleetwarden.yaml")  # type: ignore[arg-type]
    status, raw = rig.api("/api/messages?limit=50")
    assert status == 200, raw
    listed = json.loads(raw)
    kinds = {(m["sender"], m["receiver"], m["kind"]) for m in listed["messages"]}
    assert {("coder", "migrator", "task"), ("migrator", "coder", "message")} <= kinds
    assert ("reviewer", "coder", "review") in kinds

    # The reviewer's runs are the issue's task's: its actual counts them.
    [(task,)] = ledger_rows(root, "SELECT id FROM tasks WHERE source = 'forge'")
    bound = {
        str(agent)
        for (agent,) in ledger_rows(
            root,
            "SELECT runs.agent FROM task_runs JOIN runs ON runs.id = task_runs.run_id"
            " WHERE task_runs.task_id = ?",
            task,
        )
    }
    assert bound == {"coder", "reviewer"}, bound
    assert re.search(r"reviewer", said())
