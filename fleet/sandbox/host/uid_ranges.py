"""Ranges of agent uids on a host and which one a fleet takes: the choice alone, from the
register's records (:mod:`fleet.sandbox.host.uid_register` reads and writes them).

A fleet takes the range its config asks for (``agent_uids``), else the one its agents'
uids are already in, else one it chooses: the lowest no other fleet on record has held,
else the one whose last holder took it longest ago, never one a live fleet holds or whose
uids run a process of another's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UidRange:
    """The host uids ``first`` … ``first + count - 1``."""

    first: int
    count: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.first <= uid <= self.last

    def overlaps(self, other: UidRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return f"uids {self.first}–{self.last}"


@dataclass(frozen=True, slots=True)
class Holder:
    """A lease's record: the fleet (its state dir and config), its pid, its range, and
    whether its lock is held now (``live``)."""

    state_dir: str
    config: str
    pid: int
    range: UidRange
    live: bool
    taken: float = 0.0  # when the fleet took its range (seconds since the epoch)

    def who(self) -> str:
        return f"the fleet at {self.state_dir} (pid {self.pid})"


Running = Callable[[UidRange, Collection[int]], tuple[int, int] | None]
"""A process (pid, uid) running as a uid of the range, other than the given ones."""


def choose(
    wanted: UidRange | None,
    previous: UidRange | None,
    count: int,
    span: UidRange,
    holders: Collection[Holder],
    state_dir: str,
    busy: Callable[[UidRange], bool] = lambda _: False,
) -> UidRange | str:
    """The range this fleet takes, or why it cannot: ``wanted`` (the config's), else
    ``previous`` (the range its uids are in), else a range of ``count`` uids in ``span``,
    aligned from its start, that no other fleet holds and none of whose uids runs a
    process (``busy``): the lowest no other fleet on record has held, else the one whose
    last holder took it longest ago."""
    others = [h for h in holders if h.state_dir != state_dir]
    live = [h for h in others if h.live]
    asked = wanted or previous
    if asked is not None:
        holder = next((h for h in live if h.range.overlaps(asked)), None)
        if holder is None:
            return asked
        free = _free(count, span, live, (), busy)
        instead = f"`agent_uids: {{base: {free.first}}}`" if free else "`agent_uids: base: …`"
        return (
            f"{asked} are held by {holder.who()}, whose agents run as {holder.range}: "
            f"give this fleet another range with {instead} in its config"
        )
    used = [h.range for h in others]
    chosen = _free(count, span, live, used, busy) or _least_recent(count, span, others, busy)
    if chosen is None:
        return (
            f"no {count} agent uids from {span.first} to {span.last} are free of other "
            f"fleets on this host: stop one, or give this fleet a smaller `agent_uids: count`"
        )
    return chosen


def _free(
    count: int,
    span: UidRange,
    live: Collection[Holder],
    used: Collection[UidRange],
    busy: Callable[[UidRange], bool],
) -> UidRange | None:
    for first in range(span.first, span.last - count + 2, count):
        candidate = UidRange(first, count)
        if (
            not any(h.range.overlaps(candidate) for h in live)
            and not any(r.overlaps(candidate) for r in used)
            and not busy(candidate)
        ):
            return candidate
    return None


def _least_recent(
    count: int, span: UidRange, others: Collection[Holder], busy: Callable[[UidRange], bool]
) -> UidRange | None:
    """The range no live fleet holds and no process runs in whose last holder took it
    longest ago (every range has been held: each one's records are of stopped fleets)."""
    best: tuple[float, UidRange] | None = None
    for first in range(span.first, span.last - count + 2, count):
        candidate = UidRange(first, count)
        over = [h for h in others if h.range.overlaps(candidate)]
        if any(h.live for h in over):
            continue
        last = max((h.taken for h in over), default=0.0)
        if (best is None or last < best[0]) and not busy(candidate):
            best = (last, candidate)
    return None if best is None else best[1]
