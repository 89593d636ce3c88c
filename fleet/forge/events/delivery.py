"""A webhook delivery's headers, read once: which event and which delivery the forge says it
is, and its signature over the raw body checked (:meth:`DeliveryHeaders.check`), its size
capped; :class:`BadDelivery` when refused, and an event's age judged (:func:`stale`).

GitHub signs the raw body with the webhook secret (``X-Hub-Signature-256: sha256=<hex>``)
and names the event and the delivery in ``X-GitHub-Event`` and ``X-GitHub-Delivery``.
Gitea (and Forgejo, which keeps Gitea's headers) signs the same way in
``X-Gitea-Signature: <hex>`` and also sends the GitHub-style headers; it names the event
twice: ``X-Gitea-Event`` (``issues``, ``issue_comment``, ``pull_request``,
``pull_request_approved``, …) and, more precisely, ``X-Gitea-Event-Type`` (``issue_label``,
``issue_assign``, ``pull_request_comment``, ``pull_request_review_rejected``, …).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from fleet.errors import FleetwardenError
from fleet.forge.events.standard_webhooks import Signed, refusal, signing_key
from fleet.forge.model import EventKind, ForgeEvent, ForgeKind
from fleet.forge.schema import ForgeEntry

MAX_BODY: Final = 5 * 1024 * 1024
_DELIVERY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,63}")
_GITLAB_EVENT = re.compile(r"(?=.{1,64}$)[A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)*")
_GITLAB_DELIVERY: Final = ("Idempotency-Key", "X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID")

# What ``X-Gitea-Event`` says when ``X-Gitea-Event-Type`` is missing (older servers).
_GITEA_EVENT_TYPES: Final = {
    "pull_request_approved": "pull_request_review_approved",
    "pull_request_rejected": "pull_request_review_rejected",
}


@dataclass(frozen=True, slots=True)
class HookKeys:
    """What a forge's deliveries are checked with: its webhook secret (GitHub's and Gitea's
    HMAC key; GitLab's secret token) and GitLab's signing token (``whsec_…``). Each is None
    where the forge's configuration names none, empty where its variable is not set (then
    every delivery is refused)."""

    secret: bytes | None
    signing: bytes | None = None

    @classmethod
    def of(cls, entry: ForgeEntry, secret: bytes, signing: bytes = b"") -> HookKeys:
        """The keys ``entry`` asks for, of the values read from its variables: a GitHub or
        a Gitea always takes its secret; a GitLab what it names (both, when both)."""
        wants_secret = entry.kind != "gitlab" or entry.webhook_secret_env is not None
        return cls(
            secret if wants_secret else None,
            signing if entry.signing_secret_env is not None else None,
        )


@dataclass(frozen=True, slots=True)
class DeliveryHeaders:
    """What a delivery's headers say, read once (:meth:`read`): the forge's name of the event,
    its delivery id and the signature given (``None`` where a header is missing) — GitLab's
    secret token there, and its Standard Webhooks headers in ``signed``."""

    kind: ForgeKind
    event: str | None
    delivery: str | None
    signature: str | None
    signed: Signed | None = None

    @classmethod
    def read(cls, kind: ForgeKind, headers: Mapping[str, str]) -> DeliveryHeaders:
        """The headers of a delivery from a forge of ``kind``."""
        signed = None
        if kind == "gitlab":
            signed = Signed(
                header(headers, "webhook-id"),
                header(headers, "webhook-timestamp"),
                header(headers, "webhook-signature"),
            )
        return cls(
            kind,
            event_name(kind, headers),
            delivery_id(kind, headers),
            _given_signature(kind, headers),
            signed,
        )

    def check(self, keys: HookKeys | bytes, body: bytes, now: datetime | None = None) -> None:
        """Check the delivery's size, signature and naming headers against ``keys`` (bytes:
        the webhook secret alone); :class:`BadDelivery` if not. ``now`` dates a GitLab's
        signed delivery (needed when its signing token is configured).

        The signature is checked first, in constant time, so that an unsigned caller learns
        nothing else: 413 over :data:`MAX_BODY`, 401 unsigned or mis-signed (or no secret
        set), then 400 without a valid event or delivery header."""
        if len(body) > MAX_BODY:
            raise BadDelivery(413, "the body is over 5 MiB")
        keys = keys if isinstance(keys, HookKeys) else HookKeys(keys)
        if self.kind == "gitlab":
            self._check_gitlab(keys, body, now)
        else:
            self._check_signature(keys.secret or b"", body)
        pattern = _GITLAB_EVENT if self.kind == "gitlab" else _EVENT
        if self.event is None or not pattern.fullmatch(self.event):
            raise BadDelivery(400, "no event header")
        if self.delivery is None or not _DELIVERY.fullmatch(self.delivery):
            raise BadDelivery(400, "no delivery header")

    def _check_signature(self, secret: bytes, body: bytes) -> None:
        if not secret:
            raise BadDelivery(401, "no webhook secret is set for this forge")
        if self.signature is None:
            raise BadDelivery(401, "unsigned")
        expected = signature(secret, body).encode("ascii")
        if not hmac.compare_digest(expected, self.signature.lower().encode("utf-8", "replace")):
            raise BadDelivery(401, "the signature does not match")

    def _check_gitlab(self, keys: HookKeys, body: bytes, now: datetime | None) -> None:
        """GitLab's signature where its signing token is configured, its secret token where
        that is: both when both are."""
        if keys.secret is None and keys.signing is None:
            raise BadDelivery(401, "no webhook secret is set for this forge")
        if keys.signing is not None:
            if not keys.signing:
                raise BadDelivery(401, "no signing token is set for this forge")
            key = signing_key(keys.signing.decode("utf-8", "replace"))
            if key is None:
                raise BadDelivery(401, "the signing token set for this forge is no whsec_ key")
            if now is None:
                raise ValueError("a signed delivery is checked at a time: give now")
            why = refusal(self.signed or Signed(None, None, None), key, body, now)
            if why is not None:
                raise BadDelivery(401, why)
        if keys.secret is not None:
            if not keys.secret:
                raise BadDelivery(401, "no webhook secret token is set for this forge")
            if self.signature is None:
                raise BadDelivery(401, "no X-Gitlab-Token")
            given = self.signature.encode("utf-8", "replace")
            if not hmac.compare_digest(keys.secret, given):
                raise BadDelivery(401, "the token does not match")


class BadDelivery(FleetwardenError):
    """A delivery refused: ``status`` is the HTTP answer, ``why`` says why in a few words
    (never what the signature should have been)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any case (a plain dict, or aiohttp's headers)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


def event_name(kind: ForgeKind, headers: Mapping[str, str]) -> str | None:
    """The forge's name of the delivered event: Gitea's precise event type when sent."""
    if kind == "github":
        return header(headers, "X-GitHub-Event")
    if kind == "gitlab":
        return header(headers, "X-Gitlab-Event")
    for name in (
        "X-Gitea-Event-Type",
        "X-Forgejo-Event-Type",
        "X-Gitea-Event",
        "X-Forgejo-Event",
    ):
        value = header(headers, name)
        if value:
            return _GITEA_EVENT_TYPES.get(value, value)
    return None


def delivery_id(kind: ForgeKind, headers: Mapping[str, str]) -> str | None:
    """The forge's id of this delivery (a redelivery has the same one)."""
    if kind == "github":
        return header(headers, "X-GitHub-Delivery")
    if kind == "gitlab":
        return _gitlab_delivery(headers)
    return header(headers, "X-Gitea-Delivery") or header(headers, "X-Forgejo-Delivery")


def _gitlab_delivery(headers: Mapping[str, str]) -> str | None:
    """GitLab's name of the delivery: its Idempotency-Key, else its Webhook-UUID, else its
    Event-UUID with the event's name — one request (a note with a ``/label`` in it) can fire
    hooks of two events under one Event-UUID, and each is a delivery of its own."""
    for name in _GITLAB_DELIVERY[:2]:
        value = header(headers, name)
        if value:
            return value
    event = header(headers, _GITLAB_DELIVERY[2])
    if not event:
        return None
    words = (header(headers, "X-Gitlab-Event") or "").lower().split()
    return f"{event}:{'-'.join(words)}" if words else event


def signature(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``secret``, as both forges compute it."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(
    kind: ForgeKind,
    keys: HookKeys | bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None = None,
) -> None:
    """Check a delivery's size, signature and naming headers (:meth:`DeliveryHeaders.check`);
    :class:`BadDelivery` if not."""
    DeliveryHeaders.read(kind, headers).check(keys, body, now)


def _given_signature(kind: ForgeKind, headers: Mapping[str, str]) -> str | None:
    if kind == "gitlab":
        return header(headers, "X-Gitlab-Token")
    if kind == "gitea":
        for name in ("X-Gitea-Signature", "X-Forgejo-Signature"):
            value = (header(headers, name) or "").strip()
            if value:
                return value
    value = (header(headers, "X-Hub-Signature-256") or "").strip()
    if not value:
        return None
    scheme, _, hexdigest = value.partition("=")
    return hexdigest if scheme == "sha256" else ""


def stale(event: ForgeEvent, now: datetime, max_age: timedelta | float) -> bool:
    """Whether ``event`` happened longer than ``max_age`` (seconds) before ``now``.

    An event that moves nothing (:attr:`EventKind.OTHER`: a ping, an edit) is never
    stale: refusing it would only show the forge a failure."""
    if event.kind is EventKind.OTHER:
        return False
    limit = max_age if isinstance(max_age, timedelta) else timedelta(seconds=max_age)
    return now - event.at > limit
