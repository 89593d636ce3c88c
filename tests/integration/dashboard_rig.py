"""A real ``fleetwarden run`` with its dashboard on, stub agents that ask the fake provider
through the metering proxy, a budget to chart, and Debian's Chromium driven by Playwright
(pointed at the system browser: it cannot download its own here).

Used by the browser tests, the screenshot script and the dashboard benchmark.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.config.dashboard import OWN_NAME_FILE
from bot.dashboard.access.status_door import STATUS_TOKEN_FILE, StatusConnection
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, FakeProvider, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where
from tests.postgres_server import free_port

CHROMIUM = os.environ.get("FLEETWARDEN_CHROMIUM", "/usr/bin/chromium")
PROVIDER_KEY = "fake-dashboard-provider-key-0123456789abcdef0123"
USAGE = Usage(input=1000, output=200, cache_read=3000, cache_write=500)
LINK = re.compile(r"(http://fleetwarden-[a-z2-7]{26}\.localhost:\d+/signin/[A-Za-z0-9_-]{43})")
CONFIG = """\
state_dir: ./state
connectors:
  console: {{user_id: {user}}}
operators:
  - {{id: {user}, role: {role}, connector: console}}
defaults:
  stop_grace_seconds: 1
dashboard:
  listen: 127.0.0.1:{port}
providers:
  anthropic:
    upstream: {upstream}
prices:
  claude-haiku-4-5: {{input: 1.0, output: 5.0, cache_read: 0.1, cache_write: 1.25}}
budgets:
  - scope: global
    limit_tokens: 200000
    window: daily
agents:
{agents}"""
AGENT = """\
  - name: {name}
    runtime: stub
    model: claude-haiku-4-5
    secret_env: [ANTHROPIC_API_KEY]
"""


def need_chromium() -> None:
    """Skip without the browser, unless CI says it must be there."""
    have = shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        have = False
    if not have:
        if os.environ.get("FLEETWARDEN_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"Chromium ({CHROMIUM}) and Playwright are required here")
        pytest.skip("Chromium or Playwright is not installed (tests/run.sh installs them)")


def config_text(
    *, port: int, upstream: str, agents: list[str], user: str = "alice", role: str = "viewer"
) -> str:
    body = "".join(AGENT.format(name=name) for name in agents)
    return CONFIG.format(port=port, upstream=upstream, agents=body, user=user, role=role)


@dataclass
class Rig:
    """The running orchestrator, its dashboard's port and the fake provider."""

    root: Path
    bot: ConsoleBot
    port: int
    fake: FakeProvider
    config: Path
    agents: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        """The dashboard as a browser reaches it: by its own name, made at its start."""
        name = (self.root / "state" / OWN_NAME_FILE).read_text().strip()
        return f"http://{name}:{self.port}"

    def link(self) -> str:
        """A fresh sign-in link, as the console prints it."""
        return self.bot.command("dashboard", LINK.pattern).group(1)

    def api(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        """``GET path`` as ``fleetwarden status`` asks: through the state dir's socket, with
        the status token (this start's, unless ``token`` is given)."""
        state = self.root / "state"
        token = token or (state / STATUS_TOKEN_FILE).read_text().strip()
        connection = StatusConnection(state, 10.0)
        try:
            headers = {"Host": urlsplit(self.base).netloc, "Authorization": f"Bearer {token}"}
            connection.request("GET", path, headers=headers)
            reply = connection.getresponse()
            return reply.status, reply.read()
        finally:
            connection.close()

    @property
    def ledger(self) -> Path:
        return self.root / "state" / "ledger.db"

    def restart(self) -> None:
        """Stop the orchestrator (its agents keep running) and start it again."""
        assert self.bot.close(timeout=60) == 0, self.bot.stderr[-2000:]
        self.bot = ConsoleBot(self.root, "--config", str(self.config), env=self.bot.env)

    def reload(self) -> None:
        """SIGHUP: the orchestrator reads its config again."""
        self.bot.proc.send_signal(signal.SIGHUP)


@contextlib.contextmanager
def running(
    root: Path,
    agents: list[str],
    *,
    role: str = "admin",
    prefix: Sequence[str] = (),
    roster: str = "",
    env: Mapping[str, str] | None = None,
) -> Iterator[Rig]:
    """The orchestrator with ``agents`` in its roster (not started), stopped on exit with
    every agent it started; ``prefix`` runs it (e.g. ``prlimit …``, see
    :class:`ConsoleBot`). ``roster``: more agents, as YAML entries of the roster; ``env``:
    more of the orchestrator's environment (their ``secret_env``)."""
    accept = Accepted(api_keys=frozenset({PROVIDER_KEY}))
    with fake_provider_thread(
        default=Turn(text="metered answer", usage=USAGE), accept=accept
    ) as fake:
        port = free_port()
        config = root / "fleetwarden.yaml"
        text = config_text(port=port, upstream=fake.base_url, agents=agents, role=role)
        config.write_text(text + roster)
        environ = clean_env(ANTHROPIC_API_KEY=PROVIDER_KEY, **(env or {}))
        bot = ConsoleBot(root, "--config", str(config), env=environ, prefix=prefix)
        rig = Rig(root, bot, port, fake, config)
        rig.agents = agents
        try:
            yield rig
        finally:
            if rig.bot.proc.poll() is None:
                rig.bot.kill()  # the one running now: a restart replaced the first
            work = str(root / "state" / "agents")
            for pid in processes_where(
                lambda cwd, cmdline: cwd.startswith(work) or work.encode() in cmdline
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        chromium = play.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watched:
    """What a browser page did: every URL it asked for, and what went wrong in it."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def watch(page: Any) -> Watched:
    seen = Watched()
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on(
        "console",
        lambda message: seen.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    return seen


def sign_in(page: Any, link: str) -> None:
    """Open a link and press its button; the fleet page follows."""
    page.goto(link)
    with page.expect_navigation():  # the post, then its redirect: waited for whole
        page.click("#signin")
    page.wait_for_load_state()
