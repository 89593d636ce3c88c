"""A task's name: the short words operators type for it (``fix-login``), made from its title
and kept unique in the register."""

from __future__ import annotations

import re

from fleet.ledger.database.engine import Database

NAME_LENGTH = 24
"""The longest name a task is given from its title."""
_WORD = re.compile(r"[a-z0-9]+")


def name_from(title: str) -> str:
    """A short name from ``title``: its first words, lowercase, joined by ``-`` (``task``
    when it has none a name can use); a letter first, so it is never taken for an id."""
    words = _WORD.findall(title.lower())
    name = ""
    for word in words:
        longer = f"{name}-{word}" if name else word
        if len(longer) > NAME_LENGTH:
            break
        name = longer
    if not name and words:
        name = words[0][:NAME_LENGTH]
    if not name or not name[0].isalpha():
        name = f"t-{name}"[:NAME_LENGTH].rstrip("-") if name else "task"
    return name


def holds_what_went(name: str, title: str, redacted: str) -> bool:
    """Whether ``name`` holds a word redacting ``title`` took out (``redacted`` is it
    redacted): a name made from a title before its secret was named may hold the value, or
    a part of it, lowercased, where the redactor no longer finds it."""
    went = set(_WORD.findall(title.lower())) - set(_WORD.findall(redacted.lower()))
    return bool(went & set(_WORD.findall(name.lower())))


async def free_name(conn: Database, base: str) -> str:
    """``base``, or ``base-N`` with the lowest N from 2 not taken."""
    rows = await conn.execute_fetchall(
        "SELECT name FROM tasks WHERE name = ? OR name LIKE ?", (base, f"{base}-%")
    )
    taken = {str(row[0]) for row in rows}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"
