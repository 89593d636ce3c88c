"""Why a forge's events wait instead of being acted on now: :class:`ForgeHolds`.

* **Its login is not its credential's, or its credential is refused.** At start each forge
  is asked which account its credential acts as (:meth:`ForgeHolds.check_login`); when that
  is not the config's ``login``, the bot would take its own comments for a person's; when
  the forge refuses the credential (401) or its ``api_url`` is no forge's API, nothing it
  sends could be acted on. Either way the forge's events are refused — a delivery answered
  503 (:meth:`ForgeHolds.refusal`), so the forge can deliver it again — with the variable
  and the fix said to the operator, until the config (or the credential) is fixed and
  Fleetwarden restarted.
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

from fleet.forge.api.credential_words import login_problem
from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.forge.schema import ForgeEntry
from fleet.timing.clock import Clock

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
        """Ask ``forge`` which account its credential acts as; hold its events when that
        is not the config's ``login``, or when it refused the credential or is no forge's
        API at that address (:func:`~fleet.forge.api.credential_words.login_problem`). What is
        wrong, with the variable and the fix — or ``None`` when nothing is."""
        entry = self._forges[forge]
        try:
            actual = await self._apis[forge].whoami()
        except ForgeApiError as exc:
            problem = login_problem(forge, entry, error=exc)
        else:
            problem = login_problem(forge, entry, actual=actual)
        if problem is None:
            self.held.pop(forge, None)
            return None
        if problem.held:
            self.held[forge] = problem.text
        # Said in chat and on the console by the caller, once: the log file keeps it.
        log.info("%s", problem.text)
        return problem.text

    def refusal(self, forge: str) -> str | None:
        """Why a delivery to ``forge`` is refused while it is held, in words fit for the
        forge's delivery log (no variable, no config key: the operator has those), or
        None when it is not held."""
        if forge not in self.held:
            return None
        return (
            f"forge {forge} is held: Fleetwarden's credential or login for it was found wrong "
            "at start, and the operator has the details; redeliver this once it is fixed"
        )

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
