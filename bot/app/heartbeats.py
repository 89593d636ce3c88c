"""The app's heartbeat phase: the loopback endpoint agents prove they are alive on, with
the ask door beside it (:func:`bot.app.assembly.heartbeat_server`)."""

from __future__ import annotations

from bot.app import assembly as wiring
from bot.app.ledger import Ledgered
from bot.app.stops import Stop, Stops
from bot.config import Config
from fleet.clock import Clock
from fleet.watchdog.heartbeat import HeartbeatServer


async def start_heartbeats(
    cfg: Config, ledgered: Ledgered, *, clock: Clock, stops: Stops
) -> HeartbeatServer:
    """The endpoint, listening."""
    heartbeats = wiring.heartbeat_server(cfg, ledgered.ledger, ledgered.approvals, clock)
    stops.add(Stop.HEARTBEATS, heartbeats.stop)
    await heartbeats.start()
    return heartbeats
