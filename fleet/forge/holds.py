"""Why a forge's events wait instead of being acted on now: :class:`ForgeHolds`.

* **Its login is not its credential's.** At start each forge is asked which account its
  credential acts as (:meth:`ForgeHolds.check_login`); when that is not the config's
  ``login``, the bot would take its own comments for a person's, so the forge's events are
  refused, with the fix, until the config says the right login.
* **Its rate limit.** A forge that answered "rate limited" is not called again until the
  limit lifts — when it said, else after :data:`BACK_OFF_SECONDS` (:meth:`back_off`);
  the deliveries that came meanwhile are kept, and acted on once it lifts
  (:meth:`quiet` says when a limit has just lifted).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

from fleet.clock import Clock
from fleet.forge.changes import same_login
from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.forge.rest import ForgeRateLimited
from fleet.forge.schema import ForgeEntry

log = logging.getLogger(__name__)

BACK_OFF_SECONDS: Final = 60.0
"""How long a forge is left alone after a rate limit that did not say until when."""


class ForgeHolds:
    """The forges whose events wait, and why."""

    def __init__(
        self, forges: Mapping[str, ForgeEntry], apis: Mapping[str, ForgeApi], clock: Clock
    ) -> None:
        self._forges = forges
        self._apis = apis
        self._clock = clock
        self.held: dict[str, str] = {}  # forge → why its events are refused (its login)
        self.quiet_until: dict[str, datetime] = {}  # forge → when its rate limit lifts

    async def check_login(self, forge: str) -> str | None:
        """Hold ``forge``'s events when its configured ``login`` is not the account its
        credential acts as; why, or None when it is (or the forge cannot be asked now)."""
        entry = self._forges[forge]
        try:
            actual = await self._apis[forge].whoami()
        except ForgeApiError as exc:
            log.warning("forge %s: could not ask who its credential is: %s", forge, exc)
            return None
        if same_login(actual, entry.login):
            self.held.pop(forge, None)
            return None
        why = (
            f"forge {forge}'s login is {entry.login!r} in the config, but its credential acts "
            f"as {actual!r}: set login: {actual} (its events wait until then)"
        )
        self.held[forge] = why
        log.error("%s", why)
        return why

    def back_off(self, forge: str, exc: ForgeRateLimited) -> None:
        """Call ``forge`` no more until its rate limit lifts (when it said, else a minute)."""
        until = exc.retry_at or self._clock.now() + timedelta(seconds=BACK_OFF_SECONDS)
        self.quiet_until[forge] = max(until, self.quiet_until.get(forge, until))
        log.warning("forge %s is rate limited: left alone until %s", forge, f"{until:%H:%M:%S}")

    def quiet(self, forge: str) -> tuple[bool, bool]:
        """Whether ``forge`` is not to be called now, and whether its limit lifted just now
        (then what waited for it is to be acted on)."""
        until = self.quiet_until.get(forge)
        if until is None:
            return False, False
        if self._clock.now() < until:
            return True, False
        del self.quiet_until[forge]
        return False, True
