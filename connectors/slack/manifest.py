"""What the Slack app must be granted, as docs/slack.md's manifest grants it: the bot
token's scopes and the events the app subscribes to. ``check-config --online`` compares a
token's scopes with :data:`BOT_SCOPES`; a test holds the guide's manifest to these."""

from __future__ import annotations

BOT_SCOPES = frozenset(
    {
        "app_mentions:read",  # `@fleetwarden spawn …`
        "channels:history",  # commands and replies in a public control channel
        "channels:read",  # the control channel's details (conversations.info)
        "groups:history",  # … and in a private one
        "groups:read",  # … and its details
        "chat:write",  # post, edit, reply in threads; manage thread-based agent sessions
        "chat:write.customize",  # show which agent speaks
        "reactions:read",  # ✅ / ❌ answers to approvals
        "reactions:write",  # the bot's own marks on what it took
        "usergroups:read",  # operators by user group (`usergroup:S…`)
        "users:read",  # names of who asked
    }
)
"""The bot token's scopes every Slack app of Fleetwarden's needs."""

SESSION_SCOPE = "assistant:write"
"""Granted when the app is declared an agent: ``agents.sessions.*`` need it (with
``chat:write``). Needed while ``agent_sessions`` is on."""

APP_SCOPE = "connections:write"
"""The app-level token's one scope: ``apps.connections.open`` (Socket Mode)."""

BOT_EVENTS = frozenset(
    {
        "app_mention",
        "message.channels",
        "message.groups",
        "reaction_added",
        "agent_session_stopped",
        # A user group's change, told at once: who operates through it is read again.
        "subteam_created",
        "subteam_members_changed",
        "subteam_updated",
    }
)
"""The bot events the app subscribes to."""


def bot_scopes(agent_sessions: bool) -> frozenset[str]:
    """The bot token's scopes an app needs, with or without agent sessions."""
    return BOT_SCOPES | {SESSION_SCOPE} if agent_sessions else BOT_SCOPES
