"""``restart all``: every live agent restarted one at a time, as after an upgrade.

Each restart is ``restart NAME``'s own (``RestartOne``: the forge check, then the fleet's
restart through the admission, origin ``restart``); the next waits until the one before is
back — running or idle, as the fleet's state says — or :data:`BACK_WITHIN` has passed
(then it counts as not restarted, and the rest go on). Whether an agent is mid-turn is
read when its turn comes, not when the command was typed: an agent ``running`` then is
skipped and named, unless ``--force``. ``--only idle`` restarts only the agents ``idle``
(waiting for input) when their turn comes; every other is skipped, with its state.

The grammar and the confirmation are :class:`~bot.commands.handlers.agents.levers.Levers`':
only an admin restarts all, and only on a ``yes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from bot.chat.agent_text import quotes_escaped
from bot.commands.errors import CommandError
from bot.commands.grammar import ArgSpec, CommandSpec, FlagSpec
from fleet.errors import FleetError
from fleet.model import AgentState
from fleet.supervisor.interfaces import FleetView
from fleet.supervisor.status import AgentStatus

RESTART = CommandSpec(
    name="restart",
    summary="Stop an agent and start it again; `restart all` (admin) restarts each in turn.",
    args=(
        ArgSpec(
            "NAME", "The agent's name, e.g. `coder-1`; or `all` for every live agent.", agent=True
        ),
    ),
    flags=(
        FlagSpec("force", "bool", "With `all`: restart agents mid-turn too."),
        FlagSpec("only", "str", "With `all`: only the agents idle now.", "idle", choices=("idle",)),
    ),
    control=True,
    description=(
        "Stops the agent as `stop` does (SIGTERM, then SIGKILL after the grace period), then "
        "starts it again with the runtime, model, prompt and directory it was spawned with. "
        "`restart all` (admin) restarts every live agent one at a time, each back (running "
        "or idle) before the next, within 60 s; an agent mid-turn (running) when its turn "
        "comes is skipped and named, unless `--force`; `--only idle` restarts only the "
        "agents idle (waiting for input) when their turn comes. It names them and acts only "
        "on your `yes` in the same place within 60 s; its answer lists what it restarted, "
        "what it skipped and what it could not restart."
    ),
    examples=("restart coder-1", "restart all --only idle"),
)

BACK_WITHIN: Final = 60.0
"""Seconds an agent has to be back (running or idle) after its restart."""
_LOOK_EVERY: Final = 0.25
_BACK: Final = frozenset({AgentState.RUNNING, AgentState.IDLE})
_ENDED: Final = frozenset({AgentState.EXITED, AgentState.FAILED, AgentState.STOPPED})

RestartOne = Callable[[str, str], Awaitable[AgentStatus]]
"""``restart NAME``'s restart of one agent by someone; raises what refused it."""


@dataclass(slots=True)
class Restarted:
    """What ``restart all`` did: each list in the order the agents came."""

    restarted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name (why)"
    failed: list[str] = field(default_factory=list)  # "name (why)"

    def words(self) -> str:
        lines = [f"Restarted {_count(self.restarted)}: {', '.join(self.restarted) or 'none'}."]
        if self.skipped:
            lines.append(f"Skipped: {'; '.join(self.skipped)}.")
        if self.failed:
            lines.append(f"Not restarted: {'; '.join(self.failed)}.")
        return "\n\n".join(lines)

    def detail(self) -> str:
        said = f"restarted {', '.join(self.restarted) or 'none'}"
        if self.skipped:
            said += f"; skipped {'; '.join(self.skipped)}"
        return said + (f"; not restarted: {'; '.join(self.failed)}" if self.failed else "")


class RestartAll:
    """Restarts agents one at a time with ``restart NAME``'s restart (see the module)."""

    def __init__(self, fleet: FleetView, restart_one: RestartOne) -> None:
        self._fleet = fleet
        self._restart_one = restart_one

    async def live(self) -> list[str]:
        """The agents a ``restart all`` would go through: every live one, by name."""
        return sorted(s.name for s in await self._fleet.ps() if s.state.is_live)

    async def run(
        self, agents: Sequence[str], *, by: str, force: bool, only_idle: bool
    ) -> Restarted:
        done = Restarted()
        for name in agents:
            try:
                state = (await self._fleet.status(name)).state
            except FleetError as exc:
                done.failed.append(f"{name} ({quotes_escaped(str(exc))})")
                continue
            if not state.is_live:
                done.skipped.append(f"{name} ({state.value} now)")
            elif only_idle and state is not AgentState.IDLE:
                done.skipped.append(f"{name} ({state.value}, not idle)")
            elif state is AgentState.RUNNING and not force and not only_idle:
                done.skipped.append(f"{name} (mid-turn; `--force` restarts it too)")
            else:
                problem = await self._restart(name, by)
                if problem is None:
                    done.restarted.append(name)
                else:
                    done.failed.append(f"{name} ({problem})")
        return done

    async def _restart(self, name: str, by: str) -> str | None:
        """Restart ``name`` and wait until it is back; ``None``, or what went wrong."""
        try:
            await self._restart_one(name, by)
        except (CommandError, FleetError) as exc:
            return quotes_escaped(str(exc))
        return await self._back(name)

    async def _back(self, name: str) -> str | None:
        """``None`` once ``name`` is running or idle again; else why not."""
        state: AgentState | None = None
        try:
            async with asyncio.timeout(BACK_WITHIN):
                while True:
                    state = (await self._fleet.status(name)).state
                    if state in _BACK:
                        return None
                    if state in _ENDED:
                        return f"{state.value} after its restart"
                    await asyncio.sleep(_LOOK_EVERY)
        except FleetError as exc:
            return quotes_escaped(str(exc))
        except TimeoutError:
            said = f": {state.value}" if state is not None else ""
            return f"not back within {BACK_WITHIN:.0f} s{said}"


def _count(agents: Sequence[str]) -> str:
    return f"{len(agents)} agent{'' if len(agents) == 1 else 's'}"
