"""GitLab webhook deliveries posted as GitLab's ``WebHookService`` posts them, for the tests.

:func:`gitlab_delivery` makes one: the body as Rails' compact JSON (``&``, ``<`` and ``>``
escaped), ``X-Gitlab-Event``, ``X-Gitlab-Instance``, ``Idempotency-Key`` (the same on a
retry), ``X-Gitlab-Webhook-UUID`` (new on each request), ``X-Gitlab-Event-UUID``,
``User-Agent: GitLab/<version>``, the hook's secret token in ``X-Gitlab-Token`` and, with a
signing token, the Standard Webhooks headers (``webhook-id`` — the Idempotency-Key —,
``webhook-timestamp``, ``webhook-signature: v1,<base64>``), the signature computed here on
its own, not by the code under test. The payloads are built in
:mod:`tests.fakes.gitlab.payloads` (re-exported here), each as ``(event name, payload)``
to pass on: ``gitlab_delivery(*gitlab_issue("update", …), token=GITLAB_HOOK_TOKEN)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tests.fakes.gitlab.payloads import (
    GITLAB_URL,
    gitlab_issue,
    gitlab_merge_request,
    gitlab_note,
    gitlab_push,
)

__all__ = [
    "GITLAB_HOOK_TOKEN",
    "GITLAB_SIGNING_TOKEN",
    "GITLAB_URL",
    "GITLAB_VERSION",
    "gitlab_delivery",
    "gitlab_issue",
    "gitlab_merge_request",
    "gitlab_note",
    "gitlab_push",
    "rails_json",
    "sign_standard",
]

GITLAB_VERSION = "18.6.0"
GITLAB_HOOK_TOKEN = "-".join(("hook", "token", uuid.UUID(int=0x72).hex[-8:]))
"""The hook's secret token the tests configure (made at run time, shaped like no real one)."""
GITLAB_SIGNING_TOKEN = "whsec_" + base64.b64encode(b"fleetwarden test signing key 32b").decode()
"""The hook's signing token the tests configure."""


def rails_json(payload: Mapping[str, Any]) -> bytes:
    """``payload`` as Rails' ``to_json`` writes it: compact, with ``&``, ``<`` and ``>``
    escaped (they only ever stand in strings)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escaped)
    return text.encode()


def sign_standard(token: str, delivery: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature`` of ``body``, as the Standard Webhooks spec has a sender sign:
    ``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the key the
    token's base64 after ``whsec_`` is."""
    key = base64.b64decode(token.removeprefix("whsec_"))
    content = b"%s.%d.%s" % (delivery.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def gitlab_delivery(
    event_name: str,
    payload: Mapping[str, Any],
    *,
    token: str | None = None,
    signing_key: str | None = None,
    delivery: str | None = None,
    at: datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body GitLab posts for ``event_name``: with the hook's secret
    ``token``, signed with ``signing_key`` (its ``whsec_…`` token) at ``at`` (now), as
    delivery ``delivery`` (its Idempotency-Key: the same on a retry)."""
    body = rails_json(payload)
    key = delivery or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"GitLab/{GITLAB_VERSION}",
        "Idempotency-Key": key,
        "X-Gitlab-Event": event_name,
        "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
        "X-Gitlab-Instance": GITLAB_URL,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    if signing_key is not None:
        timestamp = int((at or datetime.now(UTC)).timestamp())
        headers["webhook-id"] = key
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign_standard(signing_key, key, timestamp, body)
    return headers, body
