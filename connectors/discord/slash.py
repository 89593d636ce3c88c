"""The guild slash command ``/<slash_command> command:<text>``: registering it, and who
gets which acknowledgement.

Used outside the control channel and its threads, it answers privately with where
Fleetwarden listens. Strangers (and anyone while the connector is not serving) get
nothing, as everywhere. An operator's command is echoed in the channel — Discord shows
who used it — and then runs exactly as the same text typed after the prefix.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import aiohttp

from connectors.base import InboundMessage
from connectors.discord.config import DiscordConfig
from connectors.discord.errors import invite_url
from connectors.discord.translate import from_interaction

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    from discord import app_commands

log = logging.getLogger(__name__)


class SlashCommand:
    """The slash command of one connector, queueing what operators send through it."""

    def __init__(
        self,
        config: DiscordConfig,
        *,
        is_operator: Callable[[str, tuple[str, ...]], bool],
        serving: Callable[[], bool],
        put: Callable[[InboundMessage], None],
    ) -> None:
        """``is_operator(user id, groups)``: whether to acknowledge a command at all;
        ``serving()``: whether the connector takes commands now; ``put``: queues one."""
        self._config = config
        self._is_operator = is_operator
        self._serving = serving
        self._put = put

    async def register(self, client: discord.Client) -> None:
        """Register ``/<slash_command> command:<text>`` in the server (replacing what this
        bot registered there before). Not fatal: typed commands work without it."""
        name = self._config.slash_command
        if name is None:
            return
        tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
        tree.add_command(
            app_commands.Command(
                name=name,
                description="Run a Fleetwarden command, as you would type it after the prefix",
                callback=self._on_slash,
            ),
            guild=discord.Object(self._config.guild_id),
        )
        try:
            await tree.sync(guild=discord.Object(self._config.guild_id))
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning(
                "discord: could not register /%s (%s); typed commands still work. To use "
                "it, re-invite the bot with the applications.commands scope: %s",
                name,
                exc,
                invite_url(client.application_id, self._config.guild_id, slash=True),
            )

    @app_commands.describe(command="e.g. ps, or spawn demo --runtime stub")
    async def _on_slash(self, interaction: discord.Interaction, command: str) -> None:
        """A slash command: acknowledged in the channel (Discord shows who used it), then
        run exactly as the same text typed after the prefix."""
        inbound = from_interaction(interaction, command, self._config)
        if inbound is None:
            await interaction.response.send_message(
                f"Fleetwarden answers in <#{self._config.channel_id}> and its agents' threads.",
                ephemeral=True,
            )
            return
        if not self._serving() or not self._is_operator(inbound.sender, inbound.groups):
            return  # strangers are never answered
        await interaction.response.send_message(f"`{command[:1990]}`")
        self._put(inbound)
