"""What the review room's end-to-end tests share: reading a task's first line at the real
``fleetwarden run`` console until it says what the test waits for."""

from __future__ import annotations

import re

from tests.integration.console_bot import DEFAULT_TIMEOUT, ConsoleBot, wait_until


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
