"""A Discord server played by simcord, served by the real Discord connector and Router.

simcord runs discord.py against an in-memory Discord: people post with
``MemberActor.send`` (which returns once the bot settled), the connector queues what it
accepts, and :meth:`World.deliver` — on the test's side, never as a task inside the bot,
where a wait on the connector's queue would be an "unknown wait" to simcord — takes
those messages from ``connector.inbound()`` and hands each to ``router.handle``.

What the bot posted is read back from simcord: ``ChannelHandle.history()`` and
``threads``, and the backend's stored messages (``env.backend``, simcord internals,
pinned by ``simcord==3.2.1``) for what real Discord would have pinged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import simcord

from bot.acl import Acl
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Handler, Reply, Request
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from connectors.base import InboundMessage
from connectors.discord.connector import DiscordConnector
from connectors.discord.gateway import Gateway
from fleet.ledger import Ledger

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

DELIVERY_TIMEOUT_SECONDS = 2.0
"""Real seconds to wait for a message the connector should already have queued."""
SETTLE_IDLE_SECONDS = 0.001
"""How long simcord's settling sleeps between its checks. Its default, 0.05 s, is spent
in full whenever a bot task finished in its first step (its done-callback is then still
queued when settling looks): after nearly every event this client gets, since its
``on_message`` only queues the message. That made each post by a person cost 50 ms."""


def quicken_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every settle — also the one inside ``MemberActor.send`` and the other actor
    calls, which take no ``idle`` — poll every :data:`SETTLE_IDLE_SECONDS`. This touches
    simcord's private ``Env._settle_internal`` (simcord is pinned); if it changes shape,
    nothing is patched and the tests only run slower."""
    original = simcord.Env._settle_internal
    if "idle" not in inspect.signature(original).parameters:
        return
    monkeypatch.setattr(
        simcord.Env,
        "_settle_internal",
        functools.partialmethod(original, idle=SETTLE_IDLE_SECONDS),
    )


Behaviour = Callable[[Request], Awaitable[str | Reply]]


class Recorder:
    """Handlers for every command that record each request; ``behaviour`` overrides the
    answer per command (the default is ``ran **NAME**``)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.behaviour: dict[str, Behaviour] = {}

    def table(self) -> dict[str, Handler]:
        return {name: self._handler(name) for name in Grammar(COMMANDS).command_names()}

    def _handler(self, name: str) -> Handler:
        async def handle(req: Request) -> str | Reply:
            self.requests.append(req)
            special = self.behaviour.get(name)
            return await special(req) if special else f"ran **{name}**"

        return handle

    def said(self) -> list[tuple[str, dict[str, str]]]:
        """Each request's command name and arguments, in order."""
        return [(r.command.name, dict(r.command.args)) for r in self.requests]


@dataclass
class World:
    """One guild with a control channel, served by the connector, answered by the router."""

    env: simcord.Env
    client: Gateway
    guild: simcord.GuildHandle
    control: simcord.ChannelHandle
    connector: DiscordConnector
    router: Router
    ledger: Ledger
    handlers: Recorder
    _stream: AsyncIterator[InboundMessage] | None = field(default=None, repr=False)

    @property
    def room(self) -> str:
        return str(self.control.id)

    async def next_inbound(self) -> InboundMessage:
        """The next message the connector queued (it must be queued already, or soon)."""
        if self._stream is None:
            self._stream = aiter(self.connector.inbound())
        async with asyncio.timeout(DELIVERY_TIMEOUT_SECONDS):
            return await anext(self._stream)

    async def close(self) -> None:
        """Close the inbound stream this world read from, if any."""
        stream, self._stream = self._stream, None
        aclose = getattr(stream, "aclose", None)  # inbound() is an async generator
        if aclose is not None:
            await aclose()

    async def settle(self) -> None:
        """Let the bot finish what it is doing (after a change made behind its back)."""
        await self.env.settle(idle=SETTLE_IDLE_SECONDS)

    async def deliver(self, n: int = 1) -> list[InboundMessage]:
        """Take ``n`` messages from the connector and route each, as the app's loop does;
        then let the bot settle (its own posts come back to it as gateway events)."""
        taken: list[InboundMessage] = []
        for _ in range(n):
            msg = await self.next_inbound()
            taken.append(msg)
            await self.router.handle(self.connector, msg)
        await self.settle()
        return taken

    async def say(
        self, who: simcord.MemberActor, where: simcord.ChannelHandle, text: str
    ) -> discord.Message:
        """``who`` posts ``text`` in ``where`` and the message is routed."""
        sent = await who.send(where, text)
        await self.deliver(1)
        return sent

    def stored(self, message: discord.Message) -> Any:
        """simcord's backend record of ``message`` (internal: ``ping_*``, ``allowed_mentions``)."""
        return self.env.backend.messages[message.channel.id][message.id]

    def thread(self, name: str) -> simcord.ChannelHandle:
        """The one thread named ``name`` under the control channel."""
        (found,) = [t for t in self.control.threads if t.name == name]
        return found


def posted(channel: simcord.ChannelHandle, by: discord.abc.User | None) -> list[discord.Message]:
    """What ``by`` posted in ``channel``, oldest first, without simcord's system messages
    (it adds a THREAD_CREATED message to the parent for each thread started)."""
    return [
        m
        for m in channel.history()
        if m.type in (discord.MessageType.default, discord.MessageType.reply)
        and (by is None or m.author.id == by.id)
    ]


def new_router(acl: Acl, handlers: Recorder, ledger: Ledger) -> Router:
    return Router(
        grammar=Grammar(COMMANDS, prefix="!"),
        acl=acl,
        handlers=handlers.table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )
