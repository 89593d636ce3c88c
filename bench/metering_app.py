"""The whole Fleetwarden as the proxy of :mod:`bench.metering_proxy`: the real
``fleetwarden run --config`` process, driven through its console on pipes.

Its config (:data:`CONFIG`): the console connector only; the provider ``anthropic`` → the
fake; an ``api_key`` account holding the fake's key, read from the environment variable
:data:`KEY_ENV` (the key is in no file); a global token budget, so every model request is
reserved against it and settled when its answer ends; one stub agent, :data:`AGENT`, on
the account. The bench spawns the agent and takes the base URL and the key the app gave it
from the stub's own environment (``ANTHROPIC_BASE_URL`` — the agent's per-agent proxy URL —
and the placeholder it holds in place of a key): the requests then go exactly where the
agent's would, and the fake, which answers only the real key, proves the injection on
every one. At the end the agent is stopped, the app ends on EOF (flushing its ledger), and
:func:`usage_check` reads the agent's rows from the app's ledger through the ledger's own
API (:meth:`~fleet.ledger.Ledger.connect`), so the check is the same whichever engine holds
it: the SQLite file in the app's state dir (the default), or the PostgreSQL database that
``ledger_url`` names (the config then says ``ledger: <url>``).
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.errors import LedgerError
from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.metering.counting.events import Outcome
from fleet.timing.clock import SystemClock
from tests.integration.console_bot import ConsoleBot, stub_processes_in

AGENT: Final = "bench-app"
KEY_ENV: Final = "FW_BENCH_PROVIDER_KEY"
CONFIG: Final = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
  send_reply_wait_seconds: 0
providers:
  anthropic:
    upstream: {upstream}
accounts:
  bench-key:
    kind: api_key
    provider: anthropic
    key_env: {key_env}
budgets:
  - scope: global
    limit_tokens: 1000000000000000
    window: 5h
agents:
  - name: {agent}
    runtime: stub
    model: claude-sonnet-4-5
    account: bench-key
"""
START_TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class AgentView:
    """What the agent was given: its proxy base URL and the placeholder it holds."""

    base_url: str
    placeholder: str


@dataclass(frozen=True)
class UsageCheck:
    """The agent's rows in the app's ledger: how many, and how many carry exactly the
    tokens the fake emitted."""

    rows: int
    exact: int


class AppProxy:
    """``fleetwarden run`` in ``root`` with :data:`CONFIG` against ``upstream``; its ledger
    in the state dir (SQLite), or with ``ledger_url`` the PostgreSQL database it names."""

    def __init__(
        self, root: Path, upstream: str, env: dict[str, str], ledger_url: str | None = None
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        config = root / "fleetwarden.yaml"
        text = CONFIG.format(upstream=upstream, key_env=KEY_ENV, agent=AGENT)
        if ledger_url is not None:
            text += f"ledger: {ledger_url}\n"
        config.write_text(text)
        self.workdir = root / "state" / "agents" / AGENT / "work"
        self.ledger = LedgerLocation(root / "state" / "ledger.db", ledger_url)
        self.bot = ConsoleBot(root, "--config", str(config), env=env)

    @property
    def pid(self) -> int:
        return self.bot.proc.pid

    async def spawn(self) -> AgentView:
        """Spawn the agent; what its environment says (its URL and placeholder)."""
        await asyncio.to_thread(
            self.bot.command, f"spawn {AGENT}", rf"Agent {AGENT} started", START_TIMEOUT
        )
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not (pids := stub_processes_in(self.workdir)):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"no stub process in {self.workdir}")
            await asyncio.sleep(0.1)
        env = _environ(pids[0])
        placeholder = env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_AUTH_TOKEN") or ""
        return AgentView(env["ANTHROPIC_BASE_URL"].rstrip("/"), placeholder)

    async def stop(self) -> None:
        """Stop the agent and end the app on EOF (it flushes its ledger writes); kill what
        is left after that."""
        try:
            if self.bot.proc.poll() is None:
                await asyncio.to_thread(
                    self.bot.command, f"stop {AGENT}", rf"Stopped {AGENT}", START_TIMEOUT
                )
                await asyncio.to_thread(self.bot.close, START_TIMEOUT)
        finally:
            for pid in stub_processes_in(self.workdir):
                os.kill(pid, signal.SIGKILL)
            if self.bot.proc.poll() is None:
                self.bot.proc.kill()
                self.bot.wait()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


async def usage_check(
    location: LedgerLocation, tokens: tuple[int, int, int, int]
) -> UsageCheck | None:
    """The agent's usage rows, and how many have exactly ``tokens`` (input, output, cache
    read, cache write) and outcome ``ok``; read after the app has stopped, through the
    ledger's own API (either engine). None if there is no ledger to read."""
    if location.url is None and not location.path.exists():
        return None  # the app never started: opening it would make an empty one
    try:
        ledger = await Ledger.connect(location, SystemClock())
    except LedgerError:
        return None
    try:
        events = await ledger.metering.usage_events(agent=AGENT)
    except LedgerError:
        return None
    finally:
        await ledger.close()
    seen = [
        (e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write, e.outcome)
        for e in events
    ]
    exact = seen.count((*tokens, Outcome.OK))
    return UsageCheck(len(events), exact)
