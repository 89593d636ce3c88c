"""Tests for fleet.forge.events.endpoint: deliveries posted as GitHub and Gitea post them to a real
aiohttp server — taken once, refused when unsigned, mis-signed, stale, oversized, slow or
for no forge, every refusal audited, and nothing of a body or a secret in a log line."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fleet.forge.events.delivery import MAX_BODY
from fleet.forge.events.endpoint import ALREADY, Refusal, Seen, WebhookEndpoint, WebhookForge
from fleet.forge.events.kept import event_of
from fleet.forge.model import EventKind, ForgeEvent
from fleet.forge.schema import ForgeEntry
from fleet.ledger import Ledger
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import ManualClock
from tests.fakes.forge.webhook_sender import (
    gitea_delivery,
    github_comment,
    github_delivery,
    github_example,
    github_issue,
    post,
    sign_gitea,
)
from tests.fakes.gitea import payloads as gitea
from tests.unit.chat_fakes import T0

SECRET = b"hook-secret-7f3a9c"
TEA_SECRET = b"tea-secret-2b8e11"
REPO = Slug("acme", "app")
MARKER = "body-marker-5d41402a"
GITHUB = ForgeEntry(
    kind="github", token_env="GH_TOKEN", webhook_secret_env="GH_HOOK", login="fw-bot", agent="coder"
)
GITEA = ForgeEntry(
    kind="gitea",
    api_url="https://gitea.example.com/api/v1",
    token_env="TEA_TOKEN",
    webhook_secret_env="TEA_HOOK",
    login="fw-bot",
    agent="coder",
    max_event_age_seconds=600,
)


@dataclass
class Record:
    """What the endpoint was given: the events received, the refusals audited, the
    deliveries taken (as the ledger's ``take_delivery`` would)."""

    received: list[ForgeEvent] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    taken: set[tuple[str, str]] = field(default_factory=set)
    kept: dict[str, str] = field(default_factory=dict)
    fail: bool = False

    async def receive(self, event: ForgeEvent) -> str:
        if self.fail:
            raise RuntimeError(f"could not schedule {event.body}")
        self.received.append(event)
        return f"started coder on #{event.number}"

    async def take(
        self, forge: str, delivery: str, event: str, kept: str = "", digest: str = ""
    ) -> bool:
        if (forge, digest or delivery) in self.taken or (forge, delivery) in self.taken:
            return False
        self.taken.update({(forge, digest or delivery), (forge, delivery)})
        if kept:
            self.kept[delivery] = kept
        return True

    async def audit(self, refusal: Refusal) -> None:
        self.refusals.append(refusal)


@dataclass
class Rig:
    server: TestServer
    session: aiohttp.ClientSession
    record: Record

    def url(self, forge: str = "gh") -> str:
        return str(self.server.make_url(f"/webhooks/{forge}"))

    async def send(
        self, headers: dict[str, str], body: bytes, forge: str = "gh"
    ) -> tuple[int, str]:
        return await post(self.url(forge), headers, body, session=self.session)

    @property
    def received(self) -> list[ForgeEvent]:
        return self.record.received

    @property
    def refusals(self) -> list[Refusal]:
        return self.record.refusals

    async def close(self) -> None:
        await self.session.close()
        await self.server.close()


async def start(
    clock: ManualClock, seen: Seen | None = None, held: dict[str, str] | None = None
) -> Rig:
    """The endpoint on a bare aiohttp app, on a loopback port; ``held``: the forges held,
    with why (the test may change it)."""
    record = Record()
    holding = held if held is not None else {}
    endpoint = WebhookEndpoint(
        {"gh": WebhookForge(GITHUB, SECRET), "tea": WebhookForge(GITEA, TEA_SECRET)},
        receive=record.receive,
        seen=seen or record.take,
        audit=record.audit,
        clock=clock,
        read_seconds=0.5,
        held=holding.get,
    )
    app = web.Application()
    app.add_routes(endpoint.routes())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Rig(server, aiohttp.ClientSession(), record)


@pytest.fixture
async def endpoint_rig(clock: ManualClock) -> AsyncIterator[Rig]:
    made = await start(clock)
    yield made
    await made.close()


def labeled(
    delivery: str | None = None,
    *,
    at: datetime = T0 - timedelta(minutes=1),
    secret: bytes = SECRET,
) -> tuple[dict[str, str], bytes]:
    """A GitHub delivery: issue #7 labelled for agent coder by alice."""
    event = github_issue(
        "labeled",
        repo=REPO,
        number=7,
        sender="alice",
        label="fleetwarden:coder",
        body=MARKER,
        at=at,
    )
    return github_delivery(*event, secret=secret, delivery=delivery)


async def test_a_signed_delivery_is_received_and_answered(endpoint_rig: Rig) -> None:
    """A delivery signed as GitHub signs it is given to receive; 202 with its outcome."""
    headers, body = labeled()
    assert await endpoint_rig.send(headers, body) == (202, "started coder on #7")
    [event] = endpoint_rig.received
    assert (event.kind, event.label, event.repo, event.forge) == (
        EventKind.LABELED,
        "fleetwarden:coder",
        REPO,
        "gh",
    )
    assert event.delivery == headers["X-GitHub-Delivery"]
    assert endpoint_rig.refusals == []


async def test_a_held_forge_s_delivery_is_refused_503_and_taken_when_redelivered(
    clock: ManualClock,
) -> None:
    """While the forge is held, a signed delivery gets 503 with why (a failure the forge
    shows, and lets redeliver), is not recorded and reaches nothing; redelivered once the
    hold is lifted, the same delivery is taken."""
    held = {"gh": "forge gh is held: Fleetwarden's credential was found wrong at start"}
    made = await start(clock, held=held)
    try:
        headers, body = labeled()
        status, text = await made.send(headers, body)
        assert (status, text) == (503, f"refused: {held['gh']}")
        assert made.received == [] and made.record.taken == set()
        [refusal] = made.refusals
        assert (refusal.status, refusal.delivery) == (503, headers["X-GitHub-Delivery"])
        held.clear()
        assert await made.send(headers, body) == (202, "started coder on #7")
        assert len(made.received) == 1
    finally:
        await made.close()


async def test_a_redelivery_is_answered_without_a_second_run(endpoint_rig: Rig) -> None:
    """The same delivery id again: 200 "already had it", receive not called again, and
    the replay audited."""
    headers, body = labeled()
    assert (await endpoint_rig.send(headers, body))[0] == 202
    assert await endpoint_rig.send(headers, body) == (200, ALREADY)
    assert len(endpoint_rig.received) == 1
    [refusal] = endpoint_rig.refusals
    assert (refusal.status, refusal.why, refusal.delivery) == (
        200,
        ALREADY,
        headers["X-GitHub-Delivery"],
    )


async def test_a_redelivery_is_stopped_by_the_ledger(clock: ManualClock, ledger: Ledger) -> None:
    """With the ledger's take_delivery as ``seen``, a redelivery starts nothing, nor does
    its body replayed under another delivery id; another event does reach receive."""
    made = await start(clock, seen=ledger.forge.take_delivery)
    try:
        headers, body = labeled()
        assert (await made.send(headers, body))[0] == 202
        assert (await made.send(headers, body))[0] == 200
        # The same signed body under a new (unsigned) delivery id is a replay too.
        assert (await made.send(*labeled()))[0] == 200
        assert (await made.send(*labeled(at=T0 - timedelta(minutes=2))))[0] == 202
        assert len(made.received) == 2
        assert {d.delivery for d in await ledger.forge.deliveries("gh")} >= {
            headers["X-GitHub-Delivery"]
        }
        # Each delivery taken keeps the event it carries until its outcome is written (the
        # replays keep nothing): acted on at the next start if Fleetwarden stops first.
        unsettled = await ledger.forge.unsettled_deliveries(T0 - timedelta(hours=1))
        assert [event_of(text) for _, _, text in unsettled] == made.received
    finally:
        await made.close()


async def test_a_delivery_the_ledger_refuses_to_record_is_not_accepted(
    clock: ManualClock, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """The commit of a delivery's take refused (here: this orchestrator's lease was taken
    over): 500, nothing received; once the ledger takes writes again, the forge's
    redelivery is taken."""
    held = await ledger.leases.acquire_lease("orchestrator", "a", ttl=10)
    ledger.fence("orchestrator", "a", held.epoch)
    clock.advance(11)
    await ledger.leases.acquire_lease("orchestrator", "b", ttl=3600)  # taken over
    made = await start(clock, seen=ledger.forge.take_delivery)
    try:
        headers, body = labeled()
        with caplog.at_level(logging.INFO):
            status, text = await made.send(headers, body)
        assert (status, text) == (500, "could not record it: deliver it again")
        assert made.received == []
        assert "recording it failed" in caplog.text
        ledger.fence("orchestrator", "b", held.epoch + 1)
        assert await made.send(headers, body) == (202, "started coder on #7")
        assert len(made.received) == 1
    finally:
        await made.close()


async def test_unsigned_and_mis_signed_deliveries_are_refused(endpoint_rig: Rig) -> None:
    """No signature, another secret's, or a body changed after signing: 401, audited."""
    headers, body = labeled(secret=b"")
    assert (await endpoint_rig.send(headers, body))[0] == 401
    headers, body = labeled(secret=b"not the secret")
    assert (await endpoint_rig.send(headers, body))[0] == 401
    headers, body = labeled()
    assert (await endpoint_rig.send(headers, body.replace(b"alice", b"mallory")))[0] == 401
    assert endpoint_rig.received == []
    assert [r.status for r in endpoint_rig.refusals] == [401, 401, 401]
    assert {r.why for r in endpoint_rig.refusals} == {"unsigned", "the signature does not match"}


async def test_an_unknown_forge_is_not_found(endpoint_rig: Rig) -> None:
    """A forge name that takes no webhooks is 404; an invalid name is audited as ``?``."""
    headers, body = labeled()
    assert (await endpoint_rig.send(headers, body, forge="nope"))[0] == 404
    assert (await endpoint_rig.send(headers, body, forge="%2E%2E%2Fetc"))[0] == 404
    assert [(r.forge, r.status, r.delivery) for r in endpoint_rig.refusals] == [
        ("nope", 404, None),
        ("?", 404, None),
    ]
    assert endpoint_rig.received == []


async def test_a_body_over_the_cap_is_refused(endpoint_rig: Rig) -> None:
    """Over 5 MiB is 413, whether its length is announced or it comes chunked."""
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "issues"}
    big = io.BytesIO(b" " * (MAX_BODY + 1))
    async with endpoint_rig.session.post(endpoint_rig.url(), data=big, headers=headers) as response:
        assert response.status == 413
        assert response.request_info.headers["Content-Length"] == str(MAX_BODY + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    async with endpoint_rig.session.post(
        endpoint_rig.url(), data=chunks(), headers=headers
    ) as response:
        assert response.status == 413
    assert [r.status for r in endpoint_rig.refusals] == [413, 413]


async def test_a_body_that_does_not_arrive_in_time_is_refused(endpoint_rig: Rig) -> None:
    """A body announced but not sent within the read time is 408."""
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint_rig.server.port)
    writer.write(
        b"POST /webhooks/gh HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    assert status.split()[1] == b"408"
    assert [r.status for r in endpoint_rig.refusals] == [408]


async def test_a_form_body_is_refused(endpoint_rig: Rig) -> None:
    """A webhook set to send a form is told to send JSON: 415."""
    headers, body = labeled()
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert (await endpoint_rig.send(headers, body))[0] == 415
    assert endpoint_rig.refusals[0].why.startswith("the body must be application/json")


async def test_a_stale_event_is_refused(endpoint_rig: Rig) -> None:
    """An event older than the forge's max_event_age_seconds is 400 "stale" with its age
    and the setting (and its value) that bounds it, audited, and not recorded as had (a
    fresh delivery of it could still come)."""
    headers, body = labeled(at=T0 - timedelta(hours=2, minutes=3))
    why = (
        "stale: the event is 2h03m old, older than forges.gh.max_event_age_seconds "
        f"({GITHUB.max_event_age_seconds} s) allows"
    )
    assert await endpoint_rig.send(headers, body) == (400, f"refused: {why}")
    assert endpoint_rig.received == [] and endpoint_rig.record.taken == set()
    assert [(r.status, r.why) for r in endpoint_rig.refusals] == [(400, why)]


async def test_a_signed_payload_that_is_not_one_is_a_bad_request(endpoint_rig: Rig) -> None:
    """Signed but not JSON, or without its issue: 400, audited."""
    body = b"not json"
    headers, _ = labeled()
    headers["X-Hub-Signature-256"] = "sha256=" + sign_gitea(SECRET, body)
    assert (await endpoint_rig.send(headers, body))[0] == 400
    payload = github_example("issues", "labeled")
    del payload["issue"]
    assert (await endpoint_rig.send(*github_delivery("issues", payload, secret=SECRET)))[0] == 400
    assert [r.status for r in endpoint_rig.refusals] == [400, 400]


async def test_a_gitea_delivery_is_read_against_its_forge(endpoint_rig: Rig) -> None:
    """A Gitea assignment to the bot, posted as Gitea posts it, is ASSIGNED to the bot;
    its redelivery is had once; a Gitea stale limit is the Gitea forge's own."""
    event = gitea.issue_event(
        "assigned", repo=REPO, number=5, sender="al", assignees=["fw-bot"], at=T0
    )
    headers, body = gitea_delivery(*event, secret=TEA_SECRET)
    assert (await endpoint_rig.send(headers, body, forge="tea"))[0] == 202
    assert (await endpoint_rig.send(headers, body, forge="tea"))[0] == 200
    [found] = endpoint_rig.received
    assert (found.kind, found.assignee, found.forge) == (EventKind.ASSIGNED, "fw-bot", "tea")
    old = gitea.issue_event(
        "assigned", repo=REPO, number=5, sender="al", at=T0 - timedelta(minutes=11)
    )
    assert (await endpoint_rig.send(*gitea_delivery(*old, secret=TEA_SECRET), forge="tea"))[
        0
    ] == 400
    mis = gitea_delivery(*event, secret=SECRET)  # the other forge's secret
    assert (await endpoint_rig.send(*mis, forge="tea"))[0] == 401


async def test_a_failing_receive_is_a_server_error(
    endpoint_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """receive raising is 500, logged without the event's words."""
    endpoint_rig.record.fail = True
    with caplog.at_level(logging.DEBUG):
        assert (await endpoint_rig.send(*labeled()))[0] == 500
    assert "taking it failed" in caplog.text


async def test_nothing_of_a_body_or_secret_is_logged(
    endpoint_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Across taken, replayed and refused deliveries, no log line, audit line or answer
    holds the secret, a signature or the body's words."""
    answers: list[str] = []
    signatures: list[str] = []
    comment = github_comment(repo=REPO, number=3, sender="mallory", body=f"{MARKER} @fw-bot", at=T0)
    with caplog.at_level(logging.DEBUG):
        for delivery in (
            github_delivery(*comment, secret=SECRET),
            labeled(),
            labeled(secret=b"wrong"),
            labeled(at=T0 - timedelta(days=1)),
        ):
            headers, body = delivery
            signatures += [v for k, v in headers.items() if "Signature" in k]
            answers.append((await endpoint_rig.send(headers, body))[1])
            answers.append((await endpoint_rig.send(headers, body))[1])
            answers.append((await endpoint_rig.send(headers, body, forge="tea"))[1])
        endpoint_rig.record.fail = True
        answers.append((await endpoint_rig.send(*labeled()))[1])
    seen = "\n".join([caplog.text, *answers, *(repr(r) for r in endpoint_rig.refusals)])
    assert len(endpoint_rig.refusals) >= 8
    for secret in (SECRET.decode(), TEA_SECRET.decode(), MARKER, "mallory", *signatures):
        assert secret not in seen
    assert all(r.why for r in endpoint_rig.refusals)


async def test_a_flood_of_unsigned_requests_is_audited_at_a_bounded_rate(endpoint_rig: Rig) -> None:
    """Anyone can post unsigned bodies: each is refused, but a peer's are logged and
    audited ten a minute at most, so a flood fills neither the ledger nor the log."""
    headers, body = labeled(secret=b"")
    statuses = [(await endpoint_rig.send(headers, body))[0] for _ in range(15)]
    assert statuses == [401] * 15
    assert len(endpoint_rig.refusals) == 10
    assert endpoint_rig.received == []
