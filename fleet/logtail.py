"""Reading the end of an agent's output log without loading the whole file."""

from __future__ import annotations

import os
from pathlib import Path

_BLOCK = 64 * 1024


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path`` (decoded leniently); ``[]`` if it does not exist."""
    if count <= 0:
        return []
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, seeks backwards
    except FileNotFoundError:
        return []
    with fh:
        end = fh.seek(0, os.SEEK_END)
        pos = end
        data = b""
        while pos > 0 and data.count(b"\n") <= count:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    return lines[-count:]


def read_from(path: Path, offset: int, limit: int = 256 * 1024) -> str:
    """Text appended to ``path`` after byte ``offset`` (at most ``limit`` bytes)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(limit).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def size_of(path: Path) -> int:
    """The file's size in bytes, 0 if it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
