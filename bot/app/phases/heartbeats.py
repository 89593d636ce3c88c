"""The app's heartbeat phase: the loopback endpoint agents prove they are alive on, with
the ask door, the git door, the peer door (always: every agent has ``fw-msg``) and the
forge door beside it (:func:`bot.app.assembly.heartbeat_server`)."""

from __future__ import annotations

from collections.abc import Callable

from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.phases.fleet import Fleeted
from bot.app.phases.ledger import Ledgered
from bot.app.phases.repos import git_door
from bot.app.stops import Stop
from fleet.forge.door.door import ForgeDoor
from fleet.peers.door import PeerDesk, PeerDoor
from fleet.repos.service import Repos
from fleet.watchdog.heartbeat import HeartbeatServer


async def start_heartbeats(
    at: Grounds,
    ledgered: Ledgered,
    repos: Repos | None = None,
    forge_door: ForgeDoor | None = None,
    fleeted: Callable[[], Fleeted | None] = lambda: None,
) -> HeartbeatServer:
    """The endpoint, listening, with the git door of ``repos`` when there are any, the
    peer door — reaching the postbox once ``fleeted`` gives the fleet — and the forge door
    when there are forges."""

    def peers() -> PeerDesk | None:
        made = fleeted()
        return made.peers if made is not None else None

    doors = (PeerDoor(peers), *((forge_door,) if forge_door is not None else ()))
    heartbeats = wiring.heartbeat_server(
        at.cfg,
        ledgered.ledger,
        ledgered.approvals,
        at.clock,
        gits=git_door(repos),
        doors=doors,
    )
    at.stops.add(Stop.HEARTBEATS, heartbeats.stop)
    await heartbeats.start()
    return heartbeats
