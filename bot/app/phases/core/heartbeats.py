"""The app's heartbeat phase: the loopback endpoint agents prove they are alive on, with
the ask door, the git door, the peer door (always: every agent has ``fw-msg``), the
forge door and the MCP door (:mod:`bot.app.phases.core.mcp`) beside it
(:func:`bot.app.assembly.heartbeat_server`). It listens before the
parts its doors reach are made: each door asks the registry of desks
(:class:`~bot.app.desks.Desks`) the phase making that part opens its desk in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.app import assembly as wiring
from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.stops import Stop
from fleet.forge.door.door import ForgeDoor
from fleet.peers.door import PeerDoor
from fleet.repos.door.server import GitDoor
from fleet.watchdog.heartbeat import HeartbeatServer

if TYPE_CHECKING:  # the MCP door (and the MCP SDK) loads only where MCP servers are configured
    from fleet.mcp.door.routes import McpDoor


async def start_heartbeats(
    at: Grounds,
    ledgered: Ledgered,
    desks: Desks,
    forge_door: ForgeDoor | None = None,
    mcp_door: McpDoor | None = None,
) -> HeartbeatServer:
    """The endpoint, listening, with the git door when the config names repositories, the
    peer door (always), the forge door when there are forges and the MCP door when there
    are MCP servers, each reaching its desk in ``desks``."""
    gits = GitDoor(desks.door_repo, desks.refused) if at.cfg.repos else None
    others = (forge_door, mcp_door)
    doors = (PeerDoor(desks.peers), *(door for door in others if door is not None))
    heartbeats = wiring.heartbeat_server(
        at.cfg,
        ledgered.ledger,
        ledgered.approvals,
        at.clock,
        gits=gits,
        doors=doors,
        hook_asks=desks.hook_asks,  # TUIs' permission hooks: the fleet's live sessions
    )
    at.stops.add(Stop.HEARTBEATS, heartbeats.stop)
    await heartbeats.start()
    return heartbeats
