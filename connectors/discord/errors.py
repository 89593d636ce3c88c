"""What to tell the operator when Discord refuses the bot: each message names the cause
and the exact steps that fix it."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

PORTAL = "https://discord.com/developers/applications"

PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
)
"""What the bot needs in the control channel: read it, post, open and post in threads,
and attach the pacing charts. Nothing that could moderate or mention everyone."""


def _application(application_id: int | None) -> str:
    where = f"{PORTAL}/{application_id}" if application_id else PORTAL
    return f"{where} (your application)"


def invite_url(
    application_id: int | None, guild_id: int | None = None, *, slash: bool = True
) -> str:
    """The URL that adds the bot to a server with :data:`PERMISSIONS` (and the scope its
    slash command needs, with ``slash``)."""
    scopes = ("bot", "applications.commands") if slash else ("bot",)
    if not application_id:
        return (
            f"the OAuth2 URL Generator at {PORTAL} (scopes {' and '.join(scopes)}, "
            f"permissions {PERMISSIONS.value})"
        )
    guild = discord.Object(guild_id) if guild_id else discord.utils.MISSING
    return discord.utils.oauth_url(
        application_id, permissions=PERMISSIONS, guild=guild, scopes=scopes
    )


def intents_refused(application_id: int | None) -> str:
    """Close code 4014: the Message Content intent is not enabled for the bot."""
    return (
        "discord: Discord refused the Message Content intent (gateway close code 4014), "
        "which Fleetwarden needs to read commands. Enable it: open "
        f"{_application(application_id)} → Bot → Privileged Gateway Intents → turn on "
        "MESSAGE CONTENT INTENT → Save Changes. Then start Fleetwarden again."
    )


def explain_close(exc: BaseException | None, application_id: int | None) -> str:
    """Why the gateway connection ended for good, in the operator's terms."""
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return intents_refused(application_id)
    if isinstance(exc, discord.ConnectionClosed):
        reasons = {
            4004: "the bot token was rejected: copy a fresh one (Bot → Reset Token)",
            4010: "invalid shard sent",
            4011: "the bot is in too many servers to run without sharding",
            4013: "invalid intents were sent",
        }
        reason = reasons.get(exc.code, exc.reason or "no reason given")
        return f"discord: the gateway closed the connection (code {exc.code}): {reason}"
    if isinstance(exc, discord.GatewayNotFound):
        return "discord: the gateway could not be found (a Discord outage?)"
    return f"discord: the gateway connection ended: {type(exc).__name__}: {exc}"
