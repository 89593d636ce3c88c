"""What the review room's end-to-end tests share: the head of their configs (a console, the
repository ``app`` on the upstream, ``coder`` on it reviewed by ``reviewer``), and reading a
task's first line at the real ``fleetwarden run`` console until it says what the test waits
for."""

from __future__ import annotations

import re

from tests.integration.components import app_head
from tests.integration.console_bot import DEFAULT_TIMEOUT, ConsoleBot, wait_until

HEAD = app_head()
"""A console bot's config up to the repository ``app`` (``{url}``), before its review."""
PAIR = """\
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, '{coder}']
  - name: reviewer
    runtime: command
    role: reviews the app's changes before a human does
    argv: [sh, -c, '{reviewer}']
"""
"""The agents: ``coder`` on ``app`` running ``{coder}``, ``reviewer`` running ``{reviewer}``."""


def reviewed_by_reviewer(rounds: int | str) -> str:
    """The config's line giving ``app``'s changes to ``reviewer`` for ``rounds`` rounds."""
    return f"    review: {{{{agent: reviewer, rounds: {rounds}}}}}\n"


def task_says(
    bot: ConsoleBot,
    task: int,
    pattern: str,
    timeout: float = 90.0,
    *,
    answer_within: float = DEFAULT_TIMEOUT,
) -> str:
    """Ask ``task N`` until its first line (its state and why) matches ``pattern``; it.
    ``answer_within``: how long one ``task N`` may take to answer (longer where the bot
    is still starting)."""
    seen: list[str] = []

    def says() -> bool:
        answer = bot.command(f"task {task}", rf"Task #{task} [^\n]*\n", timeout=answer_within)
        seen.append(answer.group(0))
        return re.search(pattern, seen[-1]) is not None

    assert wait_until(says, timeout, interval=0.5), (
        f"task {task} never said {pattern!r}: {seen[-1:]}"
    )
    return seen[-1]
