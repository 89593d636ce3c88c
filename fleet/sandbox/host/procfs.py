"""What Linux's /proc says about a process, for telling our agents from recycled pids."""

from __future__ import annotations


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or ``None`` if it is gone
    (or a zombie: it ended and only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of stat(5), counted from 'state' as field 3
