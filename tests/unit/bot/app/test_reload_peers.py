"""Tests for a `roster reload` (bot.app.reload) of the agents' peers: a changed `talks_to`
or `role` reaches the fleet's roster, so the peer roster (fleet.peers.roster) tells and
allows the new peers at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.reload import reload_config
from bot.config import Offered, parse_config
from fleet.errors import FleetError
from fleet.ledger import Ledger
from fleet.peers.postbox import Postbox
from fleet.peers.roster import PeerRoster
from fleet.supervisor.admission.request import Admitted, LaunchRequest
from fleet.supervisor.fleet import Fleet
from fleet.timing.clock import SystemClock
from tests.unit.bot.app.reload_rig import fleet_on

BEFORE = (
    "agents:\n"
    "  - name: coder\n"
    "    role: writes the payments service\n"
    "    talks_to: [reviewer]\n"
    "  - name: reviewer\n"
    "  - name: tester\n"
)
AFTER = (
    "agents:\n"
    "  - name: coder\n"
    "    role: writes the billing service\n"
    "    talks_to: [tester]\n"
    "    messages_per_hour: 5\n"
    "  - name: reviewer\n"
    "  - name: tester\n"
    "    role: runs the tests\n"
)


@pytest.fixture
async def reload_peers_fleet(tmp_path: Path, ledger: Ledger) -> AsyncIterator[Fleet]:
    async with fleet_on(tmp_path, ledger, BEFORE) as made:
        yield made


async def test_a_reload_applies_a_changed_talks_to_and_role(
    tmp_path: Path, ledger: Ledger, reload_peers_fleet: Fleet
) -> None:
    file = tmp_path / "fleetwarden.yaml"
    started = parse_config(BEFORE, str(file), base_dir=tmp_path, source=file)
    peers = PeerRoster(
        roster=reload_peers_fleet.roster, agents=ledger.agents, state_dir=tmp_path / "state"
    )
    coder = await reload_peers_fleet.spec("coder")
    assert peers.may_talk(coder, "reviewer") and not peers.may_talk(coder, "tester")
    file.write_text(AFTER)
    diff = await reload_config(started, {}, Offered(), reload_peers_fleet)
    assert diff.changed == ("coder", "tester")
    coder = await reload_peers_fleet.spec("coder")
    assert (coder.purpose, coder.talks_to, coder.messages_per_hour) == (
        "writes the billing service",
        ("tester",),
        5,
    )
    assert peers.may_talk(coder, "tester") and not peers.may_talk(coder, "reviewer")
    block = peers.block(coder)
    assert block is not None
    assert "What you are for: writes the billing service" in block
    assert "- tester on host local (stub) — not running: runs the tests" in block.splitlines()
    assert peers.block(await reload_peers_fleet.spec("reviewer")) is None  # nobody's peer any more


class NoLaunches:
    """An admission that is never asked: a peer that waits (``wake: wait``) is not started."""

    async def admit(self, request: LaunchRequest, wait: object = None) -> Admitted:
        raise FleetError(f"{request.agent} was not to be started")


async def test_a_message_waiting_for_a_peer_the_reload_took_away_is_refused(
    tmp_path: Path, ledger: Ledger, reload_peers_fleet: Fleet
) -> None:
    file = tmp_path / "fleetwarden.yaml"
    started = parse_config(BEFORE, str(file), base_dir=tmp_path, source=file)
    postbox = Postbox(
        messages=ledger.messages,
        runs=ledger.runs,
        fleet=reload_peers_fleet,
        admission=NoLaunches(),
        redact=lambda text: text,
        clock=SystemClock(),
    )
    try:
        sent = await postbox.send("coder", "reviewer", "look at the payments diff")
        await postbox.settled()
        assert (await postbox.wait_for(sent.id, 0)).state == "queued"
        file.write_text(AFTER)
        await reload_config(started, {}, Offered(), reload_peers_fleet)
        await postbox.sweep()  # as the app does after a reload
        await postbox.settled()
        found = await postbox.wait_for(sent.id, 0)
        assert (found.state, found.why) == (
            "refused",
            "not delivered: reviewer is no longer one of coder's peers",
        )
    finally:
        await postbox.stop()
