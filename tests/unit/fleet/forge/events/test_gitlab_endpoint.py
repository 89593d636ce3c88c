"""Tests for fleet.forge.events.endpoint with a GitLab: deliveries posted as GitLab posts
them to a real aiohttp server. GitLab disables a hook after four failures in a row, so
every valid delivery — wanted or not, stale, a replay, while the forge is held, about a
project outside the config — is answered 2xx, at once, before any work on it; only what
is not GitLab's, or is unreadable, is refused 4xx. Nothing of a secret is logged or said."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fleet.forge.events.delivery import MAX_BODY
from fleet.forge.events.endpoint import (
    ALREADY,
    OVER_CAP,
    Refusal,
    Seen,
    WebhookEndpoint,
    WebhookForge,
)
from fleet.forge.model import ForgeEvent, IssueChange
from fleet.ledger import Ledger
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import ManualClock
from tests.fakes.forge.webhook_sender import post
from tests.fakes.gitlab.hooks import (
    GITLAB_HOOK_TOKEN,
    GITLAB_SIGNING_TOKEN,
    gitlab_delivery,
    gitlab_issue,
    gitlab_merge_request,
    gitlab_note,
    gitlab_push,
)
from tests.unit.chat_fakes import T0
from tests.unit.fleet.forge.runs.work_rig import LABEL, FakeForgeApi, WorkRig, forge_entry

REPO = Slug("acme", "app")
BOT = "fleetwarden-bot"
GITLAB = forge_entry(
    kind="gitlab",
    login=BOT,
    webhook_secret_env="GL_HOOK",
    signing_secret_env="GL_SIGNING",
    max_event_age_seconds=600,
)
FORGE = WebhookForge.of(GITLAB, {"GL_HOOK": GITLAB_HOOK_TOKEN, "GL_SIGNING": GITLAB_SIGNING_TOKEN})
SIGNED = {"token": GITLAB_HOOK_TOKEN, "signing_key": GITLAB_SIGNING_TOKEN}


@dataclass
class Record:
    """What the endpoint was given: events received, refusals audited, deliveries taken."""

    received: list[ForgeEvent] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    taken: set[tuple[str, str]] = field(default_factory=set)

    async def receive(self, event: ForgeEvent) -> str:
        self.received.append(event)
        if event.repo != REPO:
            return f"ignored: {event.repo} is no repository of the config on {event.forge}"
        return "accepted"

    async def take(
        self, forge: str, delivery: str, event: str, kept: str = "", digest: str = ""
    ) -> bool:
        if {(forge, digest), (forge, delivery)} & self.taken:
            return False
        self.taken |= {(forge, digest), (forge, delivery)}
        return True

    async def audit(self, refusal: Refusal) -> None:
        self.refusals.append(refusal)


@dataclass
class Rig:
    server: TestServer
    session: aiohttp.ClientSession
    record: Record
    name: str

    async def send(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        url = str(self.server.make_url(f"/webhooks/{self.name}"))
        return await post(url, headers, body, session=self.session)

    async def close(self) -> None:
        await self.session.close()
        await self.server.close()


async def start(
    clock: ManualClock,
    *,
    receive: Any = None,
    seen: Seen | None = None,
    held: dict[str, str] | None = None,
    name: str = "gl",
) -> Rig:
    """The endpoint, for forge ``name`` (a GitLab with both tokens), on a loopback port."""
    assert FORGE is not None
    record = Record()
    endpoint = WebhookEndpoint(
        {name: FORGE},
        receive=receive or record.receive,
        seen=seen or record.take,
        audit=record.audit,
        clock=clock,
        read_seconds=0.5,
        held=(held if held is not None else {}).get,
    )
    app = web.Application()
    app.add_routes(endpoint.routes())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Rig(server, aiohttp.ClientSession(), record, name)


@pytest.fixture
async def gitlab_endpoint_rig(clock: ManualClock) -> AsyncIterator[Rig]:
    made = await start(clock)
    yield made
    await made.close()


def _labelled(**how: Any) -> tuple[str, dict[str, Any]]:
    how.setdefault("at", T0)
    return gitlab_issue(
        "update", repo=REPO, number=3, sender="wendy", labels=[LABEL], previous_labels=[], **how
    )


def _valid() -> dict[str, tuple[str, dict[str, Any]]]:
    """A valid delivery of each sort GitLab sends, wanted or not."""
    other = Slug("elsewhere", "tool")
    return {
        "label": _labelled(),
        "stale label": _labelled(at=T0 - timedelta(hours=2)),
        "note": gitlab_note(repo=REPO, number=3, sender="wendy", body="go", at=T0),
        "stale note": gitlab_note(
            repo=REPO, number=3, sender="w", body="go", at=T0 - timedelta(days=9)
        ),
        "system note": gitlab_note(
            repo=REPO, number=3, sender="wendy", body="x", system=True, at=T0
        ),
        "merged": gitlab_merge_request("merge", repo=REPO, number=3, sender="wendy", at=T0),
        "approved": gitlab_merge_request("approved", repo=REPO, number=3, sender="w", at=T0),
        "push": gitlab_push(repo=REPO, sender="wendy"),
        "another project": gitlab_issue("close", repo=other, number=1, sender="w", at=T0),
        "unknown": ("Emoji Hook", {"object_kind": "emoji", "user": {"username": "w"}}),
        "system hook": ("System Hook", {"event_name": "user_create"}),
        "test ping": gitlab_push(repo=REPO, sender="root", ref="refs/heads/test"),
    }


@pytest.mark.parametrize("sort", list(_valid()))
async def test_every_valid_delivery_is_answered_2xx(gitlab_endpoint_rig: Rig, sort: str) -> None:
    """Whatever a valid delivery is — wanted, stale, unwanted, unknown, about a project
    outside the config — it is answered 2xx, and again 2xx when delivered again."""
    headers, body = gitlab_delivery(*_valid()[sort], **SIGNED, at=T0)
    first = await gitlab_endpoint_rig.send(headers, body)
    again = await gitlab_endpoint_rig.send(headers, body)
    assert 200 <= first[0] < 300 and 200 <= again[0] < 300, (first, again)
    assert again == (200, ALREADY) or first[1].startswith("ignored, stale")


async def test_a_stale_event_is_answered_200_and_not_acted_on(gitlab_endpoint_rig: Rig) -> None:
    """A GitLab's stale label event: 200 "ignored, stale: …" (with its age and the
    setting), not received, audited as answered."""
    headers, body = gitlab_delivery(*_labelled(at=T0 - timedelta(hours=2)), **SIGNED, at=T0)
    status, text = await gitlab_endpoint_rig.send(headers, body)
    assert status == 200 and text.startswith("ignored, stale: the event is 2h")
    assert "forges.gl.max_event_age_seconds (600 s)" in text
    assert gitlab_endpoint_rig.record.received == []
    [refusal] = gitlab_endpoint_rig.record.refusals
    assert (refusal.status, refusal.event, refusal.delivery) == (
        200,
        "Issue Hook",
        headers["Idempotency-Key"],
    )


async def test_a_body_over_the_cap_is_answered_200_and_not_read(gitlab_endpoint_rig: Rig) -> None:
    """A GitLab delivery over 5 MiB (an issue a stranger made huge) is answered 200 and
    ignored, not 413: four 4xx in a row would turn the hook off."""
    headers, _ = gitlab_delivery(*_labelled(), **SIGNED, at=T0)
    url = str(gitlab_endpoint_rig.server.make_url(f"/webhooks/{gitlab_endpoint_rig.name}"))
    big = io.BytesIO(b" " * (MAX_BODY + 1))
    async with gitlab_endpoint_rig.session.post(url, data=big, headers=headers) as response:
        assert (response.status, await response.text()) == (200, OVER_CAP)
    assert gitlab_endpoint_rig.record.received == []


async def test_a_replay_under_the_same_idempotency_key_is_taken_once(
    gitlab_endpoint_rig: Rig,
) -> None:
    """GitLab's retry (the same Idempotency-Key, a new Webhook-UUID, signed anew): 200
    "already had it", received once."""
    headers, body = gitlab_delivery(*_labelled(), **SIGNED, at=T0, delivery="retry-key-1")
    assert await gitlab_endpoint_rig.send(headers, body) == (202, "accepted")
    clock_later = T0 + timedelta(seconds=30)
    again = gitlab_delivery(*_labelled(), **SIGNED, at=clock_later, delivery="retry-key-1")
    assert again[0]["X-Gitlab-Webhook-UUID"] != headers["X-Gitlab-Webhook-UUID"]
    assert await gitlab_endpoint_rig.send(*again) == (200, ALREADY)
    assert [e.delivery for e in gitlab_endpoint_rig.record.received] == ["retry-key-1"]


async def test_a_held_forge_s_delivery_is_kept_and_answered_202(clock: ManualClock) -> None:
    """While the GitLab forge is held, a valid delivery is recorded (its event kept, acted
    on at the next start) and answered 202, not 503: four of those would disable the hook."""
    held = {"gl": "forge gl is held: Fleetwarden's credential was found wrong at start"}
    made = await start(clock, held=held)
    try:
        headers, body = gitlab_delivery(*_labelled(), **SIGNED, at=T0)
        assert await made.send(headers, body) == (202, f"kept: {held['gl']}")
        assert made.record.received == []
        assert ("gl", headers["Idempotency-Key"]) in made.record.taken
    finally:
        await made.close()


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ({"signing_key": GITLAB_SIGNING_TOKEN}, "no X-Gitlab-Token"),
        (
            {"token": "hook-token-guess", "signing_key": GITLAB_SIGNING_TOKEN},
            "the token does not match",
        ),
        (
            {"token": GITLAB_HOOK_TOKEN},
            "unsigned: no webhook-signature, webhook-id and webhook-timestamp",
        ),
    ],
)
async def test_an_unauthenticated_delivery_is_refused_401(
    gitlab_endpoint_rig: Rig, how: dict[str, str], why: str
) -> None:
    """Without both the token and the signature the forge names: 401 saying why."""
    headers, body = gitlab_delivery(*_labelled(), **how, at=T0)
    assert await gitlab_endpoint_rig.send(headers, body) == (401, f"refused: {why}")
    assert gitlab_endpoint_rig.record.received == []


async def test_a_delivery_signed_too_long_ago_is_refused_401(gitlab_endpoint_rig: Rig) -> None:
    """A good signature six minutes old: 401 (a captured delivery replayed later)."""
    headers, body = gitlab_delivery(*_labelled(), **SIGNED, at=T0 - timedelta(minutes=6))
    assert await gitlab_endpoint_rig.send(headers, body) == (
        401,
        "refused: the delivery's timestamp is 360 s off",
    )


async def test_no_secret_is_logged_or_answered(
    gitlab_endpoint_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Taken, refused, replayed: no log line, answer or audit holds the token, the signing
    token or the signature; the event name shows with its spaces."""
    answers = []
    with caplog.at_level(logging.DEBUG):
        good = gitlab_delivery(*_labelled(), **SIGNED, at=T0)
        answers.append(await gitlab_endpoint_rig.send(*good))
        answers.append(await gitlab_endpoint_rig.send(*good))
        bad = gitlab_delivery(
            *_labelled(), token=GITLAB_HOOK_TOKEN[:-1], signing_key=GITLAB_SIGNING_TOKEN, at=T0
        )
        answers.append(await gitlab_endpoint_rig.send(*bad))
    seen = "\n".join(
        [caplog.text, *map(str, answers), *map(repr, gitlab_endpoint_rig.record.refusals)]
    )
    for secret in (GITLAB_HOOK_TOKEN, GITLAB_SIGNING_TOKEN.removeprefix("whsec_")):
        assert secret not in seen
    assert good[0]["webhook-signature"][3:] not in seen
    assert "(Issue Hook)" in caplog.text


async def test_the_answer_comes_before_the_work(clock: ManualClock, ledger: Ledger) -> None:
    """With forge work behind the endpoint and GitLab's API hanging, a label delivery is
    answered 202 at once; the work — asking GitLab who labelled, then starting the run —
    goes on after the answer."""
    gate = asyncio.Event()

    class SlowGitLab(FakeForgeApi):
        async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
            self.calls.append(("issue_changes", repo, number))
            await gate.wait()
            return [IssueChange("labeled", LABEL, "wendy", clock.now())]

    api = SlowGitLab(kind="gitlab", login=BOT, poster=BOT)
    api.add_issue()
    api.allow("wendy")
    work = WorkRig.make(ledger, clock, entry=GITLAB, api=api)
    made = await start(
        clock, receive=work.work.receive, seen=ledger.forge.take_delivery, name="hub"
    )
    try:
        headers, body = gitlab_delivery(*_labelled(), **SIGNED, at=T0)
        answer = await asyncio.wait_for(made.send(headers, body), timeout=5)
        assert answer == (202, "accepted")
        for _ in range(200):  # the work is under way, held by GitLab's API
            if api.named("issue_changes"):
                break
            await asyncio.sleep(0.01)
        assert api.named("issue_changes") and work.launcher.starts == []
        gate.set()
        await work.work.settle()
        assert [start["agent"] for start in work.launcher.starts] == ["coder"]
        run = await ledger.forge.live_forge_run("hub", REPO, 3, pull=False)
        assert run is not None and run.requester == "wendy"
    finally:
        gate.set()
        await made.close()
        await work.work.close()


def test_a_webhook_forge_reads_the_secrets_its_entry_names() -> None:
    """One path for every kind: the variables the entry names are read; a GitLab taking
    only signed deliveries is served on its signing token alone, one naming both checks
    both (an unset one refusing all), and a forge with none set takes no webhook."""
    signed_only = forge_entry(
        kind="gitlab", login=BOT, webhook_secret_env=None, signing_secret_env="GL_SIGNING"
    )
    forge = WebhookForge.of(signed_only, {"GL_SIGNING": GITLAB_SIGNING_TOKEN, "GL_HOOK": "x"})
    assert forge is not None
    assert (forge.keys.secret, forge.keys.signing) == (None, GITLAB_SIGNING_TOKEN.encode())
    both = WebhookForge.of(GITLAB, {"GL_HOOK": GITLAB_HOOK_TOKEN})
    assert both is not None and (both.keys.secret, both.keys.signing) == (
        GITLAB_HOOK_TOKEN.encode(),
        b"",
    )
    assert WebhookForge.of(GITLAB, {}) is None
    github = WebhookForge.of(forge_entry(), {"FORGE_HOOK_SECRET": "s"})
    assert github is not None and (github.keys.secret, github.keys.signing) == (b"s", None)
    assert not github.answers_all and FORGE is not None and FORGE.answers_all
