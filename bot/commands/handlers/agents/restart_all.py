"""``restart all``: every live agent restarted one at a time, as after an upgrade.

Each restart is ``restart NAME``'s own (``RestartOne``: the forge check, then the fleet's
restart through the admission, origin ``restart``); the next waits until the one before is
back — running or idle, as the fleet's state says — or :data:`BACK_WITHIN` has passed
(then it counts as not restarted, and the rest go on). Whether an agent is mid-turn is
read when its turn comes, not when the command was typed: an agent ``running`` then is
skipped and named, unless ``--force``. ``--only idle`` restarts only the agents ``idle``
(waiting for input) when their turn comes; every other is skipped, with its state. A frozen
agent (by an admin's ``freeze`` or a budget's cutoff) is never restarted — its old run
ending would lift the freeze, and a restart asks no budget — not even with ``--force``:
it is named, with why it is frozen, and ``resume NAME`` comes first.

The restarts run as one task of their own (:meth:`RestartAll.start`), not inside the
command's handling, so the room they were asked in answers other commands meanwhile —
``stop all`` and ``freeze all`` among them, which :meth:`RestartAll.cancel` the run under
way. Its summary is posted where ``yes`` was typed and written to the audit trail, under
the ``yes``'s source. The app's stop cancels it too (:meth:`RestartAll.stop`).

The grammar and the confirmation are :class:`~bot.commands.handlers.agents.levers.Levers`':
only an admin restarts all, and only on a ``yes``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from bot.commands.errors import CommandError
from bot.commands.routing.request import Request
from bot.text.agent_text import quotes_escaped
from connectors.base import Connector, OutboundMessage
from fleet.errors import FleetError
from fleet.ledger.records.rows import AuditOutcome
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.model import AgentState
from fleet.names import is_agent_name
from fleet.supervisor.interfaces import FleetView
from fleet.supervisor.status import AgentStatus

log = logging.getLogger(__name__)


BACK_WITHIN: Final = 60.0
"""Seconds an agent has to be back (running or idle) after its restart."""
_LOOK_EVERY: Final = 0.25
_BACK: Final = frozenset({AgentState.RUNNING, AgentState.IDLE})
_ENDED: Final = frozenset({AgentState.EXITED, AgentState.FAILED, AgentState.STOPPED})

RestartOne = Callable[[str, str], Awaitable[AgentStatus]]
"""``restart NAME``'s restart of one agent by someone; raises what refused it."""
ConnectorNamed = Callable[[str], Connector | None]
"""The running connector of that name, where the summary is posted."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The agents a ``restart all`` goes through, and those it leaves alone, frozen."""

    agents: list[str]
    frozen: list[str]  # "name (frozen: why)"
    frozen_names: list[str] = field(default_factory=list)

    def data(self) -> dict[str, object]:
        """What the question asks, kept with it (:func:`agents_asked` reads it back)."""
        return {"restart": list(self.agents), "frozen": list(self.frozen_names)}

    def question(self, *, force: bool, only_idle: bool) -> str:
        said = f"`restart all` would restart {_count(self.agents)} one at a time: "
        said += ", ".join(self.agents)
        if only_idle:
            said += " (only those idle when their turn comes)"
        elif not force:
            said += " (skipping any mid-turn when its turn comes)"
        return said + "." + self.left_alone()

    def left_alone(self) -> str:
        if not self.frozen:
            return ""
        return (
            f"{_LEFT_ALONE}{'; '.join(self.frozen)} — `resume NAME` first "
            "(`--force` does not restart a frozen agent)."
        )


_LEFT_ALONE: Final = " Left alone, frozen: "


@dataclass(frozen=True, slots=True)
class Asked:
    """The agents a question named: to restart, and left alone (frozen then)."""

    agents: frozenset[str]
    frozen: frozenset[str]


def agents_asked(plan: Mapping[str, object] | None) -> Asked | None:
    """The agents a question named, from the plan it kept (:meth:`Plan.data`); ``None``
    without one. Only what it listed to restart is restarted; those left alone, frozen then,
    are only ever named again."""
    if plan is None:
        return None
    agents, frozen = plan.get("restart"), plan.get("frozen")
    if not isinstance(agents, list) or not isinstance(frozen, list):
        return None
    return Asked(
        frozenset(a for a in agents if isinstance(a, str) and is_agent_name(a)),
        frozenset(a for a in frozen if isinstance(a, str) and is_agent_name(a)),
    )


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

    def __init__(
        self,
        fleet: FleetView,
        restart_one: RestartOne,
        *,
        connector_named: ConnectorNamed | None = None,
        audit: AuditStore | None = None,
    ) -> None:
        """``connector_named``: where a run's summary is posted; ``audit``: where it is
        recorded (``None``: not posted, not recorded)."""
        self._fleet = fleet
        self._restart_one = restart_one
        self._connector_named = connector_named
        self._audit = audit
        self._task: asyncio.Task[None] | None = None
        self._done = Restarted()  # of the run under way, as far as it went

    async def plan(self, asked: Asked | None = None) -> Plan:
        """Every live agent, by name, those frozen apart; given ``asked`` (on ``yes``), only
        the agents it named: one left alone then is not restarted now."""
        live = sorted(
            (s for s in await self._fleet.ps() if s.state.is_live),
            key=lambda s: s.name,
        )
        go: list[str] = [
            s.name for s in live if s.frozen is None and (asked is None or s.name in asked.agents)
        ]
        named = None if asked is None else asked.agents | asked.frozen
        alone = [s for s in live if s.frozen is not None and (named is None or s.name in named)]
        return Plan(
            agents=go,
            frozen=[_frozen(s.name, s.frozen) for s in alone if s.frozen is not None],
            frozen_names=[s.name for s in alone],
        )

    @property
    def under_way(self) -> bool:
        """Whether a run is going on now."""
        return self._task is not None and not self._task.done()

    def start(self, req: Request, agents: Sequence[str], *, force: bool, only_idle: bool) -> None:
        """Run :meth:`run` on ``agents`` as a task of its own, for ``req`` (the ``yes``):
        its summary posted where it was typed and audited when it ends."""
        if self.under_way:
            raise CommandError(
                "a `restart all` is under way already: its summary follows where it was "
                "asked; `stop all` or `freeze all` cancels it"
            )
        self._done = done = Restarted()
        run = self.run(agents, by=req.who, force=force, only_idle=only_idle, done=done)
        self._task = asyncio.create_task(self._ended(req, run, done), name="restart-all")

    async def cancel(self) -> Restarted | None:
        """Cancel the run under way and wait for it to end: what it had done (``None``:
        none was under way)."""
        task = self._task
        if task is None or task.done():
            return None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return self._done

    async def stop(self) -> None:
        """At the app's stop: the run under way cancelled."""
        await self.cancel()

    async def _ended(self, req: Request, run: Awaitable[Restarted], done: Restarted) -> None:
        try:
            await run
        except asyncio.CancelledError:
            await self._record(req, "error", "cancelled; " + done.detail())
            raise
        except Exception:
            log.exception("restart all stopped short")
            await self._record(req, "error", "stopped short; " + done.detail())
            await self._post(
                req, "`restart all` stopped short; the log has why.\n\n" + done.words()
            )
            return
        await self._record(req, "ok", done.detail())
        await self._post(req, done.words())

    async def _record(self, req: Request, outcome: AuditOutcome, detail: str) -> None:
        if self._audit is None:
            return
        msg = req.message
        await self._audit.record_audit(
            connector=msg.connector,
            sender=msg.sender,
            room=msg.room,
            thread=msg.thread_id,
            text=req.command.text.strip(),
            command=req.command.name,
            outcome=outcome,
            detail=detail,
            source=req.source,
        )

    async def _post(self, req: Request, text: str) -> None:
        """``text`` where ``req`` was typed; never raises (nobody waits on it)."""
        connector = (
            None if self._connector_named is None else self._connector_named(req.message.connector)
        )
        if connector is None:
            return
        try:
            await connector.send(
                OutboundMessage(
                    room=req.message.room, markdown=text, thread_id=req.message.thread_id
                )
            )
        except Exception:
            log.exception("could not post the summary of restart all in %s", req.message.room)

    async def run(
        self,
        agents: Sequence[str],
        *,
        by: str,
        force: bool,
        only_idle: bool,
        done: Restarted | None = None,
    ) -> Restarted:
        done = Restarted() if done is None else done
        for name in agents:
            try:
                status = await self._fleet.status(name)
            except FleetError as exc:
                done.failed.append(f"{name} ({quotes_escaped(str(exc))})")
                continue
            state = status.state
            if status.frozen is not None and state.is_live:
                done.skipped.append(_frozen(name, status.frozen))
            elif not state.is_live:
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


def _frozen(name: str, why: str) -> str:
    return f"{name} (frozen: {quotes_escaped(why)})"


def _count(agents: Sequence[str]) -> str:
    return f"{len(agents)} agent{'' if len(agents) == 1 else 's'}"
