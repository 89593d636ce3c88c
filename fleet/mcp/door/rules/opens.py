"""How often an agent may open a session with one server: each ``initialize`` may start a
stdio server's process, so an agent that sends them on and on would have Fleetwarden start
processes as fast as it asks (the cap on its sessions at once ends the old ones, it never
slows the new). A sliding window: at most ``limit`` opens in any ``seconds``, counted per
agent and server; one refused is not counted."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class OverOpens(Exception):
    """An ``initialize`` over the limit: the words for the agent."""


class Opens:
    """The opens of each agent with each server in the last ``seconds`` by ``clock``."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._seconds = seconds
        self._clock = clock
        self._times: dict[tuple[str, str], deque[float]] = {}

    def take(self, agent: str, server: str) -> bool:
        """Whether ``agent`` may open one more session with ``server`` now (then it is
        counted)."""
        now = self._clock()
        times = self._times.setdefault((agent, server), deque())
        while times and times[0] <= now - self._seconds:
            times.popleft()
        if len(times) >= self._limit:
            return False
        times.append(now)
        return True

    def words(self, server: str) -> str:
        """Why an open with ``server`` was refused, and what to do."""
        return (
            f"over {self._limit} MCP sessions opened with {server} in {self._seconds:g} s: "
            "reuse an open session (its Mcp-Session-Id), or initialize again later"
        )
