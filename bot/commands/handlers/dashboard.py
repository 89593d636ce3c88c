"""The ``dashboard`` command: a one-time sign-in link to the web dashboard, sent where only
the person who asked can read it; ``dashboard revoke`` ends their sessions.

Any listed role may ask (the dashboard only shows). The link goes to a private place:
on the console it is the answer itself; elsewhere the connector sends it in a direct
message (:class:`PrivateSender`), and the room only hears that it was sent. A connector
that cannot reach the person privately gets no link — a shared room is never one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.specs import DASHBOARD, DASHBOARD_REVOKE
from bot.commands.routing.request import Reply, Request
from bot.config.dashboard import DashboardSettings
from bot.dashboard.access.signin import LINK_LIFETIME, LINK_PATH, SignIns
from connectors.base import Connector, UserId

_PRIVATE_CONNECTORS = frozenset({"console"})
"""Where the answer itself is private: the console is the operator's own terminal."""


@runtime_checkable
class PrivateSender(Protocol):
    """A connector that can write to one person alone (a Matrix direct room, a Discord
    DM)."""

    def can_send_private(self) -> bool:
        """Whether it can, on this service."""
        ...

    async def send_private(self, user: UserId, markdown: str) -> bool:
        """Send ``markdown`` to ``user`` alone; whether it was sent."""
        ...


class DashboardCommands(Family):
    """``dashboard`` and ``dashboard revoke``; ``signins`` is ``None`` when the config has
    no ``dashboard:`` section."""

    def __init__(
        self,
        signins: SignIns | None,
        settings: DashboardSettings | None,
        connector_named: Callable[[str], Connector | None],
    ) -> None:
        self._signins = signins
        self._settings = settings
        self._connector_named = connector_named

    @command(DASHBOARD)
    async def dashboard(self, req: Request) -> str | Reply:
        signins, message = self._require(), req.message
        private = message.connector in _PRIVATE_CONNECTORS
        connector = None if private else self._connector_named(message.connector)
        if not private and not (
            isinstance(connector, PrivateSender) and connector.can_send_private()
        ):
            raise CommandError(
                f"I cannot write to you privately on {message.connector}, and a sign-in link "
                "is never posted in a shared room: ask for it on the console"
            )
        url = self._url()
        secret = await signins.issue(message.connector, message.sender, message.groups)
        if secret is None:  # the router answers only listed people; kept for safety
            raise CommandError("you are not on the operators list")
        minutes = int(LINK_LIFETIME.total_seconds() // 60)
        text = (
            f"Your dashboard sign-in link (works once, for {minutes} minutes; do not share "
            f"it): <{url}{LINK_PATH}{secret}>"  # an autolink: no `_…_` in it is emphasis
        )
        if private:
            return Reply(text, detail="sign-in link shown on the console")
        assert isinstance(connector, PrivateSender)
        if not await connector.send_private(message.sender, text):
            await signins.revoke(message.connector, message.sender)  # the unsent link voided
            raise CommandError(
                "I could not send you a direct message; your link was voided. Let me write "
                "to you (accept my invitation, or allow direct messages), then ask again"
            )
        return Reply(
            f"I sent you a sign-in link in a direct message (works once, for {minutes} minutes).",
            detail="sign-in link sent privately",
        )

    @command(DASHBOARD_REVOKE, under=DASHBOARD)
    async def revoke(self, req: Request) -> str:
        ended = await self._require().revoke(req.message.connector, req.message.sender)
        if not ended:
            return "You had no dashboard session open; any unused link of yours is void now."
        sessions = "session" if ended == 1 else "sessions"
        return f"Ended {ended} dashboard {sessions} of yours; unused links are void too."

    def _url(self) -> str:
        """Where links point: ``public_url``, or on this machine the dashboard's own name,
        made at its start. Never ``127.0.0.1``: a session cookie set there would reach every
        local port."""
        settings = self._settings
        if settings is None:
            return ""
        if settings.local_only and settings.own_name is None:
            raise CommandError(
                "the dashboard has not started yet, so it has no address to link to: try "
                "again in a moment (the log says why if it could not start)"
            )
        return settings.public_url

    def _require(self) -> SignIns:
        if self._signins is None:
            raise CommandError(
                "the dashboard is off: add a `dashboard:` section to the config "
                "(e.g. `dashboard: {listen: 127.0.0.1:8750}`) and restart Fleetwarden"
            )
        return self._signins
