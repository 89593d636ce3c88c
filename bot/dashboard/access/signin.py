"""Signing in to the dashboard without a password: a one-time link from chat becomes a
browser session bound to that chat user and the role they had.

A link's secret and a session's cookie are 256-bit random tokens; the ledger keeps only
their SHA-256 (:mod:`fleet.ledger.stores.operators.dashboard`). A link is good once, for
:data:`LINK_LIFETIME`. A session lasts :data:`SESSION_LIFETIME` at most, and every request
checks the person's role again against the ACL as it is now (a ``roster reload`` replaces
it): a demoted or removed operator is out on their next request.

Out for good: once the role a session or link was made for is not the person's any more,
:meth:`SignIns.settle` ends it in the ledger (after each change of the ACL, and at start
for what changed while Fleetwarden was down), and a request that finds it so ends it too.
Restored to that role later, the person asks for a new link; the old session and any link
sent before stay dead.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from bot.acl import Acl, Role
from fleet.ledger.stores.operators.dashboard import DashboardStore, SignIn
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

LINK_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=12)
LINK_PATH = "/signin/"
"""Where a link points: ``LINK_PATH + secret``."""


def digest(secret: str) -> str:
    """What the ledger keeps of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Viewer:
    """Someone signed in now: who, with which role, until when."""

    connector: str
    user_id: str
    role: Role
    session: str  # the digest of their cookie
    groups: tuple[str, ...] = ()  # theirs on the chat service when they asked for the link

    @property
    def who(self) -> str:
        return f"{self.user_id} on {self.connector}"


class SignIns:
    """Links, sessions and the role check on every request."""

    def __init__(self, dashboard: DashboardStore, acl: Acl, clock: Clock) -> None:
        self._dashboard = dashboard
        self._acl = acl
        self._clock = clock

    async def issue(self, connector: str, user_id: str, groups: tuple[str, ...]) -> str | None:
        """A new link's secret for that person, or ``None`` for a stranger."""
        role = self._acl.role_of(connector, user_id, groups)
        if role is None:
            return None
        secret = secrets.token_urlsafe(32)
        now = self._clock.now()
        who = SignIn(connector, user_id, role.value, groups, now + LINK_LIFETIME)
        await self._dashboard.add_dashboard_link(digest(secret), who, now)
        return secret

    async def redeem(self, secret: str) -> tuple[str, Viewer] | None:
        """Use a link: the new session's cookie and who it signs in; ``None`` when the link
        is forged, used, expired, or its person's role has changed since."""
        if not _plausible(secret):
            return None
        cookie = secrets.token_urlsafe(32)
        now = self._clock.now()
        found = await self._dashboard.redeem_dashboard_link(
            digest(secret), digest(cookie), now, now + SESSION_LIFETIME
        )
        if found is None:
            return None
        viewer = await self._current(found, digest(cookie))
        return (cookie, viewer) if viewer is not None else None

    async def check(self, cookie: str) -> Viewer | None:
        """Who the session cookie signs in, if it is live and their role unchanged."""
        if not _plausible(cookie):
            return None
        session = digest(cookie)
        found = await self._dashboard.dashboard_session(session, self._clock.now())
        return await self._current(found, session) if found is not None else None

    def still_allowed(self, viewer: Viewer) -> bool:
        """Whether ``viewer``'s role is still the one they signed in with."""
        return self._acl.role_of(viewer.connector, viewer.user_id, viewer.groups) is viewer.role

    async def alive(self, session: str) -> bool:
        """Whether the session whose cookie's digest is ``session`` is live."""
        return await self._dashboard.dashboard_session(session, self._clock.now()) is not None

    async def live(self) -> set[str]:
        """The digests of the sessions not ended nor expired."""
        return await self._dashboard.live_dashboard_sessions(self._clock.now())

    async def revoke(self, connector: str, user_id: str) -> int:
        """End that person's sessions (and void their unused links); how many ended."""
        return await self._dashboard.end_dashboard_sessions(connector, user_id, self._clock.now())

    async def end(self, viewer: Viewer) -> None:
        """End this one session (the page's sign-out button)."""
        await self._dashboard.end_dashboard_session(viewer.session, self._clock.now())

    async def settle(self) -> int:
        """End every session, and void every unused link, whose person no longer has the
        role it was made for (demoted, promoted or removed); how many."""
        now = self._clock.now()
        sessions, links = await self._dashboard.open_dashboard_signins(now)
        ended = [d for d, who in sessions.items() if not self._holds(who)]
        voided = [d for d, who in links.items() if not self._holds(who)]
        if ended or voided:
            await self._dashboard.end_dashboard_signins(ended, voided, now)
            log.info(
                "dashboard: roles changed; ended %d sessions and voided %d links",
                len(ended),
                len(voided),
            )
        return len(ended) + len(voided)

    async def _current(self, found: SignIn, session: str) -> Viewer | None:
        """Who ``session`` signs in, if its person still has its role; else it ends."""
        role = self._acl.role_of(found.connector, found.user_id, found.groups)
        if role is None or role.value != found.role:
            await self._dashboard.end_dashboard_session(session, self._clock.now())
            return None
        return Viewer(found.connector, found.user_id, role, session, found.groups)

    def _holds(self, who: SignIn) -> bool:
        role = self._acl.role_of(who.connector, who.user_id, who.groups)
        return role is not None and role.value == who.role


def _plausible(secret: str) -> bool:
    """Whether ``secret`` could be one of ours (43 URL-safe characters): anything else is
    refused before the ledger is asked."""
    return len(secret) == 43 and all(c.isalnum() or c in "-_" for c in secret)
