"""GitLab's side of a webhook, as a test drives it: :class:`HookSender` posts deliveries
(``(headers, body)`` pairs, built by whatever makes GitLab's deliveries) to a receiver's
URL and disables the hook as GitLab does when the receiver keeps failing.

GitLab's rule (``doc/user/project/integrations/webhooks.md``, "Auto-disabled webhooks"):
a delivery fails when the receiver answers anything but 2xx, or not within the timeout
(10 s on gitlab.com), or cannot be reached. Four failures in a row disable the hook: a
4xx answer says the hook is misconfigured and disables it until someone re-enables it by
hand (:meth:`HookSender.re_enable`); a 5xx, a timeout or no connection says the receiver
fails for a while, and disables the hook for one minute, doubled on each further failure
up to a day, after which it is tried again. One success sets the count back to zero. A
disabled hook sends nothing: the delivery is lost to the receiver. (Newer GitLabs treat
4xx like 5xx and disable for good after 40 failures in a row; the older rule, kept here,
is the stricter one for a receiver: four 4xx answers are enough.)
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import aiohttp

from fleet.timing.clock import Clock, SystemClock

FAILURES_TO_DISABLE: Final = 4
TIMEOUT_SECONDS: Final = 10.0
FIRST_BACKOFF: Final = timedelta(minutes=1)
MAX_BACKOFF: Final = timedelta(hours=24)


class HookState(enum.Enum):
    """Whether GitLab still sends the hook's deliveries."""

    ENABLED = "enabled"
    TEMPORARILY_DISABLED = "temporarily disabled"
    PERMANENTLY_DISABLED = "permanently disabled"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery's fate: not ``sent`` (the hook was disabled), or sent and answered
    ``status`` (None: no answer — ``error`` says why) in ``seconds``."""

    sent: bool
    status: int | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class HookSender:
    """One GitLab webhook posting to ``url``. ``timeout`` is how long GitLab waits for an
    answer (10 s; small in tests); ``clock`` says when a temporary disabling ends."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        clock: Clock | None = None,
        failures_to_disable: int = FAILURES_TO_DISABLE,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._clock = clock or SystemClock()
        self._threshold = failures_to_disable
        self.failures = 0  # in a row
        self.permanent = False
        self.disabled_until: datetime | None = None
        self.deliveries: list[Delivery] = []

    @property
    def state(self) -> HookState:
        if self.permanent:
            return HookState.PERMANENTLY_DISABLED
        if self.disabled_until is not None and self._clock.now() < self.disabled_until:
            return HookState.TEMPORARILY_DISABLED
        return HookState.ENABLED

    def re_enable(self) -> None:
        """What a maintainer's "Enable" does: the hook sends again, its count at zero."""
        self.failures, self.permanent, self.disabled_until = 0, False, None

    async def send(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        """Post one delivery (nothing, when the hook is disabled) and apply the rule."""
        if self.state is not HookState.ENABLED:
            delivery = Delivery(sent=False)
            self.deliveries.append(delivery)
            return delivery
        delivery = await self._post(headers, body)
        self.deliveries.append(delivery)
        self._judge(delivery)
        return delivery

    async def _post(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        started = time.monotonic()
        limit = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=limit) as session,
                session.post(
                    self.url, data=body, headers=dict(headers), allow_redirects=False
                ) as answer,  # fmt: skip
            ):
                await answer.read()
                return Delivery(True, answer.status, None, time.monotonic() - started)
        except TimeoutError:
            return Delivery(True, None, "timed out", time.monotonic() - started)
        except (aiohttp.ClientError, OSError) as exc:
            return Delivery(True, None, type(exc).__name__, time.monotonic() - started)
        except asyncio.CancelledError:
            raise

    def _judge(self, delivery: Delivery) -> None:
        if delivery.ok:
            self.failures, self.disabled_until = 0, None
            return
        self.failures += 1
        if self.failures < self._threshold:
            return
        if delivery.status is not None and 400 <= delivery.status < 500:
            self.permanent = True
            return
        doublings = min(self.failures - self._threshold, 12)  # 2**11 minutes is past a day
        backoff = min(FIRST_BACKOFF * 2**doublings, MAX_BACKOFF)
        self.disabled_until = self._clock.now() + backoff


__all__ = ["Delivery", "HookSender", "HookState"]
