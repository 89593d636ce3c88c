"""The read-only command about what agents say to each other: ``msgs [NAME]`` lists the
recent messages between agents from the ledger's audit of them (every message, refused ones
too), or those one agent sent and received."""

from __future__ import annotations

from typing import Protocol

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.agents.specs import DEFAULT_LIMIT, MSGS
from bot.commands.parsing.grammar import no_agent
from bot.commands.routing.request import Request
from bot.render.agents import peers as render
from bot.text.agent_text import said
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.model import AgentSpec
from fleet.names import is_agent_name
from fleet.supervisor.status import AgentStatus


class KnownAgents(Protocol):
    """The fleet, as ``msgs`` asks it which agents there are (the ledger's and the
    roster's), for the name an unknown one was likely meant to be."""

    async def knows(self, name: str) -> bool: ...

    async def ps(self) -> list[AgentStatus]: ...

    def roster(self) -> list[AgentSpec]: ...


class MessageCommands(Family):
    """The ``msgs`` handler over the ledger's messages."""

    def __init__(self, messages: MessagesStore, fleet: KnownAgents) -> None:
        self._messages = messages
        self._fleet = fleet

    @command(MSGS)
    async def msgs(self, req: Request) -> str:
        name = req.command.args.get("NAME")
        limit = req.command.int_flag("limit", DEFAULT_LIMIT)
        if name is None:
            return render.messages(await self._messages.recent(None, limit), None, limit)
        if not is_agent_name(name):
            raise CommandError(
                f"{said(name, 40)} is no agent name: `msgs` lists every agent's messages"
            )
        records = await self._messages.recent(name, limit)
        if not records and not await self._fleet.knows(name):
            known = {status.name for status in await self._fleet.ps()}
            known.update(spec.name for spec in self._fleet.roster())
            raise no_agent(name, known - {name})
        return render.messages(records, name, limit)
