"""The webhook endpoint: ``POST /webhooks/<forge>``, where GitHub, Gitea and GitLab deliver
events.

Each delivery is read with a cap and a deadline, its signature checked over the raw body
in constant time (:meth:`fleet.forge.events.delivery.DeliveryHeaders.check`), its payload
read into a :class:`~fleet.forge.model.ForgeEvent`, refused when stale, recorded by its
delivery id and its body's digest, committed before anything is answered (a redelivery, or
the body replayed under another id, is answered without a second run) and handed to ``receive``,
which decides and schedules and returns at once: a forge gives up on a slow answer (GitHub
after ten seconds). Answers, in plain text:

    202  what ``receive`` made of it
    200  "already had it": a delivery recorded before (a redelivery, a replay)
    400  a stale event (its age said, and the setting that bounds it), a missing event
         or delivery header, a payload that is not one
    401  unsigned, mis-signed, or no secret set for this forge
    503  the forge is held (its credential or login found wrong at start): not recorded,
         so the forge's redelivery, once that is fixed, is taken
    404  no forge of that name takes webhooks
    408  a body not all there within :data:`READ_SECONDS`
    413  a body over 5 MiB
    415  a body that is not ``application/json`` (set the webhook's content type to JSON)
    500  the delivery could not be recorded (nothing was acted on), or ``receive`` failed

GitLab disables a hook that fails four times in a row — until someone re-enables it by
hand when the failures were 4xx answers — so a GitLab's valid delivery is answered 2xx
whatever it is: a stale one 200 (``ignored, stale: …``, not acted on), one while the forge
is held 202 (recorded and kept, acted on at the next start), an unwanted one 202 with what
``receive`` made of it. Only a delivery that is not GitLab's (not authenticated), over the
cap, or unreadable is refused 4xx — and a ledger or ``receive`` failure is still a 500.

Every refusal (and every delivery answered as had before) is logged, and given to
``audit`` as a :class:`Refusal`. No log line or answer holds anything of the body, nor a
signature or a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from aiohttp import web

from fleet.capped_body import OverCap, read_capped
from fleet.forge.events.delivery import MAX_BODY, BadDelivery, DeliveryHeaders, HookKeys, stale
from fleet.forge.events.kept import kept
from fleet.forge.events.webhooks import from_http
from fleet.forge.model import ForgeEvent
from fleet.forge.posts.footer import duration
from fleet.forge.schema import ForgeEntry, is_forge_name
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

PREFIX: Final = "/webhooks/"
"""Where forges deliver their events: ``/webhooks/<forge>``."""
PATH: Final = PREFIX + "{forge}"
OVER_CAP: Final = "the body is over 5 MiB, and is not read"
READ_SECONDS: Final = 10.0
ALREADY: Final = "already had it"
UNSIGNED: Final = frozenset({400, 401, 404, 408, 413, 415})
"""Refusals anyone can cause without the secret: logged and audited at a bounded rate."""
SAID_PER_MINUTE: Final = 10
SAID_PEERS: Final = 4096

Receive = Callable[[ForgeEvent], Awaitable[str]]
"""Decide what an event does and schedule it; the outcome, in a few words."""


class Seen(Protocol):
    """Record delivery ``(forge, delivery, event name)`` with the event ``kept`` until it is
    acted on, and its body's ``digest`` before it (in one transaction): True when both are
    new, False when either was recorded before; True only once committed (the ledger's
    ``take_delivery``)."""

    async def __call__(
        self, forge: str, delivery: str, event: str, kept: str = "", digest: str = ""
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """A delivery not acted on: its forge's name (``?`` when the path named none that is
    valid), delivery id and event name when known and well-formed, the status answered,
    why, and the peer's address."""

    forge: str
    delivery: str | None
    event: str | None
    status: int
    why: str
    peer: str | None


Audit = Callable[[Refusal], Awaitable[None]]
Held = Callable[[str], "str | None"]
"""Why forge ``name``'s events are refused now (it is held), or None."""


@dataclass(frozen=True, slots=True)
class WebhookForge:
    """A forge that takes webhooks: its configuration, its webhook secret (GitLab's secret
    token) and GitLab's signing token (``whsec_…``), as read from their variables."""

    entry: ForgeEntry
    secret: bytes
    signing: bytes = b""

    @classmethod
    def of(cls, entry: ForgeEntry, environ: Mapping[str, str]) -> WebhookForge | None:
        """``entry``'s webhook forge, its secrets read from ``environ`` by the variables it
        names (``webhook_secret_env``, ``signing_secret_env``); None when none is set."""
        secret = environ.get(entry.webhook_secret_env, "") if entry.webhook_secret_env else ""
        signing = environ.get(entry.signing_secret_env, "") if entry.signing_secret_env else ""
        if not secret and not signing:
            return None
        return cls(entry, secret.encode(), signing.encode())

    @property
    def keys(self) -> HookKeys:
        """What its deliveries are checked with (all the configuration names)."""
        return HookKeys.of(self.entry, self.secret, self.signing)

    @property
    def answers_all(self) -> bool:
        """Whether every valid delivery is answered 2xx: a GitLab's (see the module)."""
        return self.entry.kind == "gitlab"


class WebhookEndpoint:
    """The ``POST /webhooks/{forge}`` route (:meth:`routes`), for any aiohttp app."""

    def __init__(
        self,
        forges: Mapping[str, WebhookForge],
        *,
        receive: Receive,
        seen: Seen,
        audit: Audit,
        clock: Clock,
        read_seconds: float = READ_SECONDS,
        held: Held | None = None,
    ) -> None:
        self._forges = forges
        self._held = held
        self._receive = receive
        self._seen = seen
        self._audit = audit
        self._clock = clock
        self._read_seconds = read_seconds
        self._said: dict[tuple[str, int], tuple[float, int, int]] = {}

    def routes(self) -> list[web.RouteDef]:
        """The route to add to an app (``app.add_routes(endpoint.routes())``)."""
        return [web.post(PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Take one delivery (see the module's docstring for the answers)."""
        name = request.match_info.get("forge", "")
        forge = self._forges.get(name)
        shown = name if is_forge_name(name) else "?"
        if forge is None:
            return await self._refuse(
                request, shown, None, 404, "no forge of that name takes webhooks"
            )
        said = DeliveryHeaders.read(forge.entry.kind, request.headers)  # read once
        # Over the cap, GitLab's is answered 200 and ignored: a genuine one refused (an issue
        # grown huge by a stranger, edited four times) would turn its hook off.
        over = 200 if forge.answers_all else 413
        if request.content_length is not None and request.content_length > MAX_BODY:
            return await self._refuse(request, shown, said, over, OVER_CAP)
        if request.content_type != "application/json":
            why = "the body must be application/json: set the webhook's content type to JSON"
            return await self._refuse(request, shown, said, 415, why)
        try:
            body = await read_capped(request, MAX_BODY, within=self._read_seconds)
        except TimeoutError:
            return await self._refuse(request, shown, said, 408, "the body did not arrive in time")
        except OverCap:
            return await self._refuse(request, shown, said, over, OVER_CAP)
        now = self._clock.now()
        try:
            event = from_http(name, forge.entry, forge.keys, said, body, now)
        except BadDelivery as refused:
            return await self._refuse(request, shown, said, refused.status, refused.why)
        if stale(event, now, forge.entry.max_event_age_seconds):
            words = stale_words(event, now, name, forge)
            if forge.answers_all:  # answered, and not acted on
                return await self._refuse(request, shown, said, 200, f"ignored, {words}")
            return await self._refuse(request, shown, said, 400, words)
        held = self._held(name) if self._held is not None else None
        if held is not None and not forge.answers_all:
            # not recorded: the forge may deliver it again once fixed
            return await self._refuse(request, shown, said, 503, held)
        # The delivery id is not signed: the same signed body under a new id is a replay.
        # Both are recorded, with the event kept until acted on, before anything is answered.
        digest = "body:" + hashlib.sha256(event.name.encode() + b"\n" + body).hexdigest()
        try:
            new = await self._seen(name, event.delivery, event.name, kept(event), digest)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "webhook %s delivery %s (%s): recording it failed", name, event.delivery, event.name
            )
            return web.Response(status=500, text="could not record it: deliver it again")
        if not new:
            return await self._refuse(request, shown, said, 200, ALREADY)
        if held is not None:  # recorded, its event kept: acted on at the next start
            log.info(
                "webhook %s delivery %s (%s): kept, %s", name, event.delivery, event.name, held
            )
            return web.Response(status=202, text=f"kept: {held}")
        try:
            outcome = await self._receive(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "webhook %s delivery %s (%s): taking it failed", name, event.delivery, event.name
            )
            return web.Response(status=500, text="could not take it")
        log.info("webhook %s delivery %s (%s): %s", name, event.delivery, event.name, outcome)
        return web.Response(status=202, text=outcome)

    def _should_say(self, peer: str | None, status: int) -> bool:
        """Whether a refusal of an unsigned request from ``peer`` is logged and audited:
        the first :data:`SAID_PER_MINUTE` of each peer and status a minute; the rest are
        counted, and their number said with the next one let through."""
        now = self._clock.now().timestamp()
        key = (peer or "-", status)
        start, said, held = self._said.get(key, (now, 0, 0))
        if now - start >= 60:
            if held:
                log.warning("webhook: %d more refusals (%d) from %s", held, status, key[0])
            start, said, held = now, 0, 0
        if said < SAID_PER_MINUTE:
            self._said[key] = (start, said + 1, held)
            return True
        self._said[key] = (start, said, held + 1)
        if len(self._said) > SAID_PEERS:  # the oldest forgotten: memory stays bounded
            del self._said[next(iter(self._said))]
        return False

    async def _refuse(
        self,
        request: web.Request,
        forge: str,
        said: DeliveryHeaders | None,
        status: int,
        why: str,
    ) -> web.StreamResponse:
        # Only a known forge's headers are read (``said``), and only shown when valid.
        delivery = _well_formed(said.delivery) if said is not None else None
        event = _well_formed(said.event, words=True) if said is not None else None
        if status in UNSIGNED and not self._should_say(request.remote, status):
            return web.Response(status=status, text=f"refused: {why}")  # a flood: counted
        log.warning(
            "webhook %s delivery %s (%s) from %s: %d %s",
            forge,
            delivery or "-",
            event or "-",
            request.remote or "-",
            status,
            why,
        )
        await self._audit(Refusal(forge, delivery, event, status, why, request.remote))
        return web.Response(status=status, text=why if status == 200 else f"refused: {why}")


def stale_words(event: ForgeEvent, now: datetime, name: str, forge: WebhookForge) -> str:
    """Why a stale delivery is refused: how old its event is, and the setting (its value)
    that bounds it — raised if the forge's deliveries come late (a backlog, a replay)."""
    limit = forge.entry.max_event_age_seconds
    age = duration((now - event.at).total_seconds())
    return (
        f"stale: the event is {age} old, older than forges.{name}.max_event_age_seconds "
        f"({limit} s) allows"
    )


def _well_formed(value: str | None, *, words: bool = False) -> str | None:
    """A header value fit for a log line: short, printable ASCII without spaces (``words``:
    with single spaces between words, as GitLab names its events)."""
    if value is None or not 0 < len(value) <= 100:
        return None
    parts = value.split(" ") if words else [value]
    if not all(part and all(33 <= ord(c) < 127 for c in part) for part in parts):
        return None
    return value
