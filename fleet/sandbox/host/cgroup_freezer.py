"""Freezing one agent's control group with the kernel's cgroup freezer, and thawing it.

A freeze by signals (SIGSTOP to every process found) is undone by any process of the agent
that sends SIGCONT, and misses what is forked between looking and stopping. The kernel's
freezer holds whatever the processes do: a frozen process runs no instruction, handles no
signal until it is thawed (SIGCONT does not thaw it), and what is forked in the group is
frozen at birth. On cgroup v1 even a SIGKILL waits for the thaw: whoever ends a frozen run
thaws it.

Two interfaces are known (:class:`Freezer`):

* cgroup v2: every group but the root has ``cgroup.freeze`` (``1``: frozen, ``0``: thawed);
  ``cgroup.events`` says ``frozen 1`` once every process in it is;
* cgroup v1: a group of the ``freezer`` hierarchy has ``freezer.state``: write ``FROZEN`` or
  ``THAWED``; it reads ``FREEZING`` until every process is frozen, then ``FROZEN``
  (writing ``FROZEN`` again retries the stragglers).

Which groups an agent has is :mod:`fleet.sandbox.host.cgroups`' part; :func:`freezer_of` picks
the one to freeze among them (``None``: none can be, and signals are the fallback).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.errors import FleetError

FREEZE_TIMEOUT: Final = 5.0
"""How long the kernel may take to freeze every process of a group (one stuck in the
kernel, on a network filesystem say, freezes only when it returns)."""
V2_CONTROL: Final = "cgroup.freeze"
V2_EVENTS: Final = "cgroup.events"
V1_STATE: Final = "freezer.state"


@dataclass(frozen=True, slots=True)
class Freezer:
    """One control group the kernel can freeze, and the version of its interface."""

    group: Path
    version: int

    @property
    def control(self) -> Path:
        """The file a freeze or a thaw is written to."""
        return self.group / (V2_CONTROL if self.version == 2 else V1_STATE)

    @property
    def status(self) -> Path:
        """The file that says whether the freeze holds yet."""
        return self.group / (V2_EVENTS if self.version == 2 else V1_STATE)

    def word(self, frozen: bool) -> str:
        """What to write to :attr:`control` to freeze (``frozen``) or thaw the group."""
        if self.version == 2:
            return "1" if frozen else "0"
        return "FROZEN" if frozen else "THAWED"

    def holds(self, status: str) -> bool:
        """Whether :attr:`status`'s text says every process of the group is frozen."""
        if self.version == 2:
            return parse_events(status).get("frozen") == "1"
        return status.strip() == "FROZEN"


def freezer_of(groups: Iterable[Path], exists: Callable[[Path], bool]) -> Freezer | None:
    """The group among ``groups`` (an agent's, one per hierarchy) the kernel can freeze:
    a v2 group (it has ``cgroup.freeze``) or a v1 ``freezer`` group (``freezer.state``);
    ``None`` when none can be (``exists`` tells which files there are)."""
    for group in groups:
        if exists(group / V2_CONTROL):
            return Freezer(group, 2)
        if exists(group / V1_STATE):
            return Freezer(group, 1)
    return None


def parse_events(text: str) -> dict[str, str]:
    """``cgroup.events`` (``populated 1`` / ``frozen 0``, a key and a value a line) as a
    mapping; lines of another shape are skipped."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            found[parts[0]] = parts[1]
    return found


async def freeze(freezer: Freezer, *, within: float = FREEZE_TIMEOUT) -> None:
    """Freeze ``freezer``'s group and return once the kernel says every process in it is
    frozen. ``OSError`` when the group refuses the write (or is gone); :class:`FleetError`
    when the freeze does not hold within ``within`` seconds (it is left asked for: the
    kernel freezes the rest as they come back from where they are stuck)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = 0.001
    while True:
        freezer.control.write_text(freezer.word(True), encoding="ascii")
        status = freezer.status.read_text(encoding="ascii")
        if freezer.holds(status):
            return
        if loop.time() >= deadline:
            raise FleetError(
                f"the kernel did not finish freezing control group {freezer.group} within "
                f"{within:.0f} s ({freezer.status.name} says {' '.join(status.split())!r}): "
                "a process stuck in the kernel freezes once it returns; `resume` thaws it"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def thaw(freezer: Freezer) -> bool:
    """Thaw ``freezer``'s group; whether it was there to thaw (a group removed with its run
    holds nothing). ``OSError`` when it refuses the write."""
    try:
        freezer.control.write_text(freezer.word(False), encoding="ascii")
    except FileNotFoundError:
        return False
    return True
