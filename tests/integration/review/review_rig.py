"""What the review room's end-to-end tests share: reading a task's first line at the real
``fleetwarden run`` console until it says what the test waits for."""

from __future__ import annotations

import re

from tests.integration.console_bot import ConsoleBot, wait_until


def task_says(bot: ConsoleBot, task: int, pattern: str, timeout: float = 90.0) -> str:
    """Ask ``task N`` until its first line (its state and why) matches ``pattern``; it."""
    seen: list[str] = []

    def says() -> bool:
        seen.append(bot.command(f"task {task}", rf"Task #{task} [^\n]*\n").group(0))
        return re.search(pattern, seen[-1]) is not None

    assert wait_until(says, timeout, interval=0.5), (
        f"task {task} never said {pattern!r}: {seen[-1:]}"
    )
    return seen[-1]
