"""What an operator types to name a task, a mission or an agent of the work register,
checked before the register is asked: a reference that could be no task's or mission's is
answered as not found with its text escaped, so hostile text never reaches an error's
words unescaped."""

from __future__ import annotations

import re
from typing import Final

from bot.commands.errors import CommandError, NotFound
from bot.text.agent_text import said
from fleet.ledger.records.tasks import MissionRecord, TaskRecord
from fleet.names import is_agent_name
from fleet.tasks.register import MISSION_NAME, Register

_TASK_REF: Final = re.compile(r"#?[0-9]{1,11}|[a-z][a-z0-9-]{0,63}")
AFTER_MOST: Final = 20
"""The most tasks one ``--after`` names."""


async def task_of(register: Register, ref: str) -> TaskRecord:
    """The task ``ref`` names (``12``, ``#12`` or its name)."""
    text = ref.strip()
    if not _TASK_REF.fullmatch(text):
        raise NotFound(f"no task {said(text, 40)}: `tasks` lists them by number and name")
    return await register.find(text)


async def mission_of(register: Register, ref: str) -> MissionRecord:
    """The mission named ``ref``."""
    text = ref.strip()
    if not MISSION_NAME.fullmatch(text):
        raise NotFound(f"no mission {said(text, 40)}: `missions` lists them")
    return await register.find_mission(text)


async def tasks_after(register: Register, text: str, what: str = "--after") -> list[TaskRecord]:
    """The tasks ``--after`` (or ``what``) names, comma-separated, each one there."""
    refs = [part.strip() for part in text.split(",") if part.strip()]
    if not refs:
        raise CommandError(f"{what} names no task: give numbers or names, `{what} 3,fix-login`")
    if len(refs) > AFTER_MOST:
        raise CommandError(f"{what} names {len(refs)} tasks: at most {AFTER_MOST}")
    found: dict[int, TaskRecord] = {}
    for ref in refs:
        task = await task_of(register, ref)
        found[task.id] = task
    return list(found.values())


def agent_of(text: str) -> str:
    """``text`` as an agent's name, or why not and how to fix it."""
    if not is_agent_name(text):
        raise CommandError(
            f"invalid agent name {said(text, 40)}: use 1-32 characters, a lowercase letter "
            "first, then lowercase letters, digits or '-' (for example `coder-1`)"
        )
    return text
