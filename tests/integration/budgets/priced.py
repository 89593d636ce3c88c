"""What the budgets room's console tests start from: the head of their configs (the
console, quick stops, the fake provider as Anthropic's upstream and a price for the model)
and the real ``fleetwarden run`` on it beside the fake provider, every answer priced."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import FAKE_KEY, FakeProvider, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in

MODEL = "claude-sonnet-4-5"
# 30 000 tokens and $0.21 a request (20 000 in at $3/M, 10 000 out at $15/M).
USAGE = Usage(input=20_000, output=10_000)
PRICED_HEAD = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
providers:
  anthropic:
    upstream: {upstream}
prices:
  {model}: {{input: 3.0, output: 15.0}}
"""
"""A ``str.format`` template (``{upstream}``, ``{model}``): $3 in and $15 out a million
tokens; a module's budgets and agents follow."""


@contextmanager
def priced_bot(
    tmp_path: Path, config: str, agents: Sequence[str], more: str = ""
) -> Iterator[tuple[ConsoleBot, FakeProvider]]:
    """The fake provider answering every request with :data:`USAGE`, and ``fleetwarden run``
    on ``config`` (a template of :data:`PRICED_HEAD`'s, then ``more`` as it is); both
    stopped however it ends, and the stub agents ``agents`` killed."""
    with fake_provider_thread(default=Turn(text="spent", usage=USAGE)) as fake:
        path = tmp_path / "fleetwarden.yaml"
        path.write_text(config.format(upstream=fake.base_url, model=MODEL) + more)
        bot = ConsoleBot(tmp_path, "--config", str(path), env=clean_env(ANTHROPIC_API_KEY=FAKE_KEY))
        try:
            yield bot, fake
            bot.close()
        finally:
            for agent in agents:
                for pid in stub_processes_in(tmp_path / "state" / "agents" / agent / "work"):
                    os.kill(pid, signal.SIGKILL)
            if bot.proc.poll() is None:
                bot.kill()
