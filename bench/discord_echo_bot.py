"""The floor for the Discord round-trip benchmark: the least a discord.py bot can do.

A plain :class:`discord.Client` with Fleetwarden's intents (guilds, guild messages,
message content), ``AllowedMentions.none()`` and no member chunking. It answers every
``!ps`` from someone else in its channel with a constant text that replies to the command
(``message_reference``, ``fail_if_not_exists=False``, ``mention_author=False``) — the
shape Fleetwarden posts, without parsing, ACL, ledger or markdown rendering.

Run by :mod:`bench.discord_roundtrip`, against the fake Discord of
``tests/fakes/discord/server.py``::

    FW_ECHO_TOKEN=… python -m bench.discord_echo_bot API_BASE GATEWAY_URL CHANNEL_ID
        [--guild-ready-timeout S]

It prints ``ready`` on stdout once discord.py's ``on_ready`` fired; SIGTERM stops it.
``--trace FILE`` appends a JSON line per gateway frame read and per REST call to FILE
(:func:`trace_calls`, which the benchmark also puts into Fleetwarden for its ``--trace``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import os
import sys
import time
import warnings
from collections.abc import Iterable
from typing import Any

import yarl

from bench.harness import run_until_sigterm

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    from discord.gateway import DiscordWebSocket

TOKEN_ENV = "FW_ECHO_TOKEN"
REPLY = "No agents yet. Start one with `spawn NAME --prompt TEXT`."  # Fleetwarden's text
TRACE_POINTS = (  # (module, attribute, label)
    ("discord.gateway", "DiscordWebSocket.received_message", "gateway frame"),
    ("discord.http", "HTTPClient.request", "discord REST call"),
)


def trace_calls(trace_file: str, points: Iterable[tuple[str, str, str]]) -> None:
    """Wrap each ``(module, attribute, label)`` — a function, or a method as
    ``Class.name`` — so every call appends ``{"what": label, "start": …, "end": …}``
    (``time.perf_counter``: CLOCK_MONOTONIC, the same clock in every process) to
    ``trace_file``. A point that no longer exists is said on stderr and skipped."""
    out = open(trace_file, "a", buffering=1)  # noqa: SIM115  (lives as long as the process)

    def note(what: str, start: float) -> None:
        end = time.perf_counter()
        out.write(json.dumps({"what": what, "start": start, "end": end}) + "\n")

    for module, attr, label in points:
        owner_name, _, name = attr.rpartition(".")
        try:
            owner: Any = importlib.import_module(module)
            if owner_name:
                owner = getattr(owner, owner_name)
            original = getattr(owner, name)
        except (ImportError, AttributeError) as exc:
            print(f"trace: cannot wrap {module}.{attr}: {exc}", file=sys.stderr, flush=True)
            continue
        setattr(owner, name, _timed(original, label, note))


def _timed(original: Any, label: str, note: Any) -> Any:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(*a, **k)
            finally:
                note(label, start)

        return timed_async

    @functools.wraps(original)
    def timed_sync(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            note(label, start)

    return timed_sync


class EchoBot(discord.Client):
    def __init__(self, channel_id: int, guild_ready_timeout: float) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = True
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            chunk_guilds_at_startup=False,
        )
        self.channel_id = channel_id

    async def on_ready(self) -> None:
        print("ready", flush=True)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.channel.id != self.channel_id:
            return
        if message.content.strip() != "!ps":
            return
        reference = discord.MessageReference(
            message_id=message.id, channel_id=message.channel.id, fail_if_not_exists=False
        )
        try:
            await message.channel.send(REPLY, reference=reference, mention_author=False)
        except discord.HTTPException as exc:
            print(f"echo bot: send failed: {exc}", file=sys.stderr, flush=True)


async def serve(api_base: str, gateway: str, channel_id: int, guild_ready_timeout: float) -> None:
    discord.http.Route.BASE = api_base.rstrip("/")  # as connectors/discord/gateway.point_at
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    client = EchoBot(channel_id, guild_ready_timeout)
    async with client:
        await client.start(os.environ[TOKEN_ENV], reconnect=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api_base", help="the value for discord.http.Route.BASE")
    parser.add_argument("gateway_url", help="the gateway's ws:// URL")
    parser.add_argument("channel_id", type=int, help="the channel to answer in")
    parser.add_argument("--guild-ready-timeout", type=float, default=2.0)
    parser.add_argument("--trace", metavar="FILE", help="append timings of frames and REST calls")
    args = parser.parse_args()
    if args.trace:
        trace_calls(args.trace, TRACE_POINTS)

    run_until_sigterm(
        serve(args.api_base, args.gateway_url, args.channel_id, args.guild_ready_timeout)
    )


if __name__ == "__main__":
    main()
