"""What the forge tests that drive the real ``fleetwarden run`` share: the end-to-end
config and the bot started on it, posting a delivery to its webhook endpoint, waiting for
it to listen, the fake provider's turns that make Claude Code write a file or run a
command, the bot's own comments on a fake forge, and reading its ledger read-only."""

from __future__ import annotations

import http.client
import socket
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from fleet.ledger.records.forge import Slug
from tests.fakes.forge.webhook_sender import Event, github_delivery
from tests.fakes.gitea.api import FakeGitea
from tests.fakes.github.api import BOT_LOGIN, FakeGitHub, github_thread
from tests.fakes.provider.server import ToolCall, Turn
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.postgres_server import free_port

E2E_KEY = "fake-forge-key-0123456789abcdefghijklmn"  # the account's key the fake provider takes
E2E_CONFIG = """\
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
dashboard:
  listen: 127.0.0.1:{port}
forges:
  {forge}:
    kind: {kind}
    api_url: {api}
    token_env: FORGE_TOKEN
    webhook_secret_env: FORGE_HOOK_SECRET
    login: {login}
    agent: coder
repos:
  app:
    url: {url}
    token_env: APP_TOKEN
    forge: {forge}
    forge_repo: acme/app
agents:
  - name: coder
    runtime: claude
    account: team
    repo: app
    permissions: full
"""


class Commented(Protocol):
    """A fake forge's comments: GitHub's and Gitea's fakes both keep them so, and GitLab's
    as the suites see it."""

    def comments_on(self, repo: str, number: int, /, *, pull: bool = False) -> list[Any]: ...


APP_ON_GITHUB = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
dashboard:
  listen: 127.0.0.1:{port}
forges:
  gh:
    kind: github
    api_url: {api}
    token_env: FORGE_TOKEN
    webhook_secret_env: FORGE_HOOK_SECRET
    login: {login}
repos:
  app:
    url: {url}
    token_env: APP_TOKEN
    forge: gh
    forge_repo: acme/app
"""
"""A config's head for the forge tests: the repository ``app`` (``{url}``) on the GitHub
``gh`` (``{api}``, as ``{login}``), webhooks on ``{port}``; its ``agents:`` follow."""

CODER_ON_APP = (
    APP_ON_GITHUB
    + """\
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, {script}]
"""
)
""":data:`APP_ON_GITHUB` with its one agent, ``coder``: a ``command`` agent on ``app`` running
the test module's script (``{script}``)."""


@contextmanager
def app_on_github(upstream: GitUpstream, slug: Slug, writer: str) -> Iterator[FakeGitHub]:
    """The strict fake GitHub with ``slug`` backed by the upstream's ``app.git``, ``writer``
    and Fleetwarden's own login its collaborators; no violation of the API when it stops."""
    with github_thread() as fake:
        fake.add_repo(str(slug))
        fake.link_git(str(slug), upstream.root / "app.git")
        fake.add_collaborator(str(slug), writer, "write")
        fake.add_collaborator(str(slug), BOT_LOGIN, "write")
        yield fake
        assert fake.violations == []


@contextmanager
def command_bot_on_github(
    tmp_path: Path,
    config: str,
    work: str,
    upstream: GitUpstream,
    github: FakeGitHub | FakeGitea,
    tokens: Mapping[str, str],
    *,
    login: str = BOT_LOGIN,
) -> Iterator[tuple[ConsoleBot, int]]:
    """The real ``fleetwarden run`` on ``config`` (:data:`APP_ON_GITHUB` and its agents, whose
    ``{script}`` is the shell script ``work``) with ``tokens`` (APP_TOKEN, FORGE_TOKEN,
    FORGE_HOOK_SECRET) in its environment, listening; the bot and its port, killed if the
    test failed. ``github`` may be the fake Gitea, Fleetwarden's ``login`` on it given."""
    port = free_port()
    path = tmp_path / "fleetwarden.yaml"
    script = '"' + work.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    path.write_text(
        config.format(
            port=port, api=github.api_url, login=login, url=upstream.url("app"), script=script
        )
    )
    env = clean_env(PATH=agent_path(), **tokens)
    with ConsoleBot(tmp_path, "--config", str(path), env=env) as running:
        assert wait_until(lambda: listening(port), timeout=60), running.stderr
        yield running, port


def start_e2e_bot(
    tmp_path: Path,
    *,
    forge: str,
    kind: str,
    api: str,
    provider: str,
    login: str,
    url: str,
    tokens: Mapping[str, str],
) -> tuple[ConsoleBot, int]:
    """``fleetwarden run`` on :data:`E2E_CONFIG` (the forge ``forge`` of ``kind`` at ``api``,
    the repository ``app`` at ``url``, the agent ``coder``) with ``tokens`` (APP_TOKEN,
    FORGE_TOKEN, FORGE_HOOK_SECRET) in its environment; the bot and its dashboard's port."""
    port = free_port()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        E2E_CONFIG.format(
            forge=forge, kind=kind, provider=provider, port=port, api=api, login=login, url=url
        )
    )
    env = clean_env(PATH=agent_path(), FW_TEAM_KEY=E2E_KEY, **tokens)
    return ConsoleBot(tmp_path, "--config", str(config), env=env), port


def bot_comments(
    fake: Commented, repo: Slug, number: int, login: str, *, pull: bool = False
) -> list[str]:
    """The bodies of ``login``'s comments on ``repo``'s issue ``number`` (``pull``: pull
    request ``number``, which GitLab numbers apart), oldest first."""
    return [c.body for c in fake.comments_on(str(repo), number, pull=pull) if c.author == login]


def deliver_as_github(
    port: int, event: Event, delivery: str | None = None, *, secret: bytes, forge: str = "gh"
) -> tuple[int, str]:
    """Post ``event`` to the bot's webhook endpoint for ``forge`` as GitHub does, signed with
    ``secret`` (a module binds its own: ``partial(deliver_as_github, secret=SECRET)``); the
    status and the text."""
    name, payload = event
    headers, body = github_delivery(name, payload, secret=secret, delivery=delivery)
    return post(port, forge, headers, body)


def post(port: int, forge: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
    """Post a delivery to ``/webhooks/<forge>`` on the bot's port; the status and text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"/webhooks/{forge}", body=body, headers=dict(headers))
        answer = conn.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    finally:
        conn.close()


def listening(port: int) -> bool:
    """Whether something takes connections on ``port`` of 127.0.0.1 now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def bash(command: str) -> Turn:
    """A turn in which Claude Code runs ``command`` with its Bash tool."""
    return Turn(text="", tool=ToolCall("Bash", {"command": command, "description": "run it"}))


def write(path: Path, content: str) -> Turn:
    """A turn in which Claude Code writes ``content`` to ``path``."""
    return Turn(text="", tool=ToolCall("Write", {"file_path": str(path), "content": content}))


def ledger_rows(tmp_path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` over the bot's ledger (``tmp_path/state``), opened read-only."""
    path = tmp_path / "state" / "ledger.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()
