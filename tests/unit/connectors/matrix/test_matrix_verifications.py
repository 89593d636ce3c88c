"""The bot's verification service around the SAS machine: what the sync hands it twice,
how many one user may run, and that a failure inside never reaches the sync loop.
The homeserver is replaced at the one seam the service speaks through (`wire.raw_json`);
the whole flow against Synapse and Element's own client stack is in the integration tests."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connectors.matrix import wire
from connectors.matrix.encryption.cross_signing import BotIdentity
from connectors.matrix.verification.board import Board
from connectors.matrix.verification.service import MAX_PER_USER, Verifications
from fleet.timing.clock import ManualClock

ANN = "@ann:hs"


class Homeserver:
    """The answers of ``/keys/query`` and the to-device messages the bot sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.queries = 0
        self.broken = False

    async def raw_json(self, client: Any, method: str, path: str, body: Any = None) -> Any:
        if self.broken:
            raise RuntimeError("a bug")
        if path.endswith("/keys/query"):
            self.queries += 1
            device = {"user_id": ANN, "device_id": "PHONE", "keys": {"ed25519:PHONE": "p" * 43}}
            return {"device_keys": {ANN: {"PHONE": device}}}
        kind = path.split("/")[-2]
        self.sent.append((kind, body["messages"][ANN]["PHONE"]))
        return {}


@pytest.fixture
def matrix_verifications_server(monkeypatch: pytest.MonkeyPatch) -> Homeserver:
    fake = Homeserver()
    monkeypatch.setattr(wire, "raw_json", fake.raw_json)
    return fake


def verifications(tmp_path: Path, clock: ManualClock) -> Verifications:
    client = cast(Any, SimpleNamespace(user_id="@bot:hs", device_id="BOTDEV", olm=None))
    return Verifications(
        client,
        trust=cast(Any, None),
        has_role=lambda user: user == ANN,
        identity=BotIdentity(client, tmp_path, None),
        board=Board(tmp_path / "verifications"),
        clock=clock,
    )


def request(clock: ManualClock, txn: str) -> dict[str, Any]:
    return {
        "type": "m.key.verification.request",
        "sender": ANN,
        "content": {
            "from_device": "PHONE",
            "methods": ["m.sas.v1"],
            "timestamp": int(clock.now().timestamp() * 1000),
            "transaction_id": txn,
        },
    }


async def test_a_request_the_sync_hands_over_twice_is_answered_once(
    tmp_path: Path, clock: ManualClock, matrix_verifications_server: Homeserver
) -> None:
    """A retried sync repeats its to-device events: the second copy changes nothing."""
    bot = verifications(tmp_path, clock)
    event = request(clock, "txn-1")
    await bot.on_to_device(event)
    await bot.on_to_device(event)
    assert [kind for kind, _ in matrix_verifications_server.sent] == ["m.key.verification.ready"]
    assert matrix_verifications_server.queries == 1
    assert len(Board(tmp_path / "verifications").pending()) == 1


async def test_one_user_runs_a_bounded_number_of_verifications(
    tmp_path: Path, clock: ManualClock, matrix_verifications_server: Homeserver
) -> None:
    """Past :data:`MAX_PER_USER` running, a user's next request is cancelled at once."""
    bot = verifications(tmp_path, clock)
    for n in range(MAX_PER_USER + 1):
        await bot.on_to_device(request(clock, f"txn-{n}"))
    kinds = [kind for kind, _ in matrix_verifications_server.sent]
    assert kinds == ["m.key.verification.ready"] * MAX_PER_USER + ["m.key.verification.cancel"]
    assert matrix_verifications_server.sent[-1][1]["transaction_id"] == f"txn-{MAX_PER_USER}"


async def test_a_failure_inside_is_logged_and_never_stops_the_sync(
    tmp_path: Path,
    clock: ManualClock,
    matrix_verifications_server: Homeserver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error while handling an event is logged; the sync loop goes on."""
    bot = verifications(tmp_path, clock)
    matrix_verifications_server.broken = True
    with caplog.at_level(logging.ERROR):
        await bot.on_to_device(request(clock, "txn-1"))
        in_room = {
            "type": "m.room.message",
            "sender": ANN,
            "event_id": "$request",
            "origin_server_ts": int(clock.now().timestamp() * 1000),
            "content": {
                "msgtype": "m.key.verification.request",
                "to": "@bot:hs",
                "from_device": "PHONE",
                "methods": ["m.sas.v1"],
            },
        }
        await bot.on_room_event("!room:hs", in_room)
    assert [r.getMessage() for r in caplog.records] == [
        "matrix: handling a verification event failed",
        "matrix: handling a verification event in !room:hs failed",
    ]


async def test_a_stop_cancels_what_is_running(
    tmp_path: Path, clock: ManualClock, matrix_verifications_server: Homeserver
) -> None:
    """At stop, the other side's client is told the verification ended."""
    bot = verifications(tmp_path, clock)
    await bot.on_to_device(request(clock, "txn-1"))
    await bot.close()
    assert [kind for kind, _ in matrix_verifications_server.sent][-1] == "m.key.verification.cancel"
    assert Board(tmp_path / "verifications").pending() == []
