"""Tests for bot.app.stops: the app's parts stop once each, in the order Stop lists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bot.app.stops import Stop, Stops


async def test_parts_stop_in_the_listed_order_whatever_order_they_were_added() -> None:
    """Added as a start makes them, run in :class:`Stop`'s order; plain functions too."""
    stopped: list[Stop] = []
    stops = Stops()

    def recording(part: Stop) -> Callable[[], Awaitable[None]]:
        async def stop() -> None:
            stopped.append(part)

        return stop

    for part in (Stop.LEDGER, Stop.METERING, Stop.FLEET, Stop.SCHEDULER, Stop.IN_FLIGHT):
        stops.add(part, recording(part))
    stops.add(Stop.LOCK, lambda: stopped.append(Stop.LOCK))
    await stops.run()
    assert stopped == [
        Stop.IN_FLIGHT,
        Stop.SCHEDULER,
        Stop.FLEET,
        Stop.METERING,
        Stop.LEDGER,
        Stop.LOCK,
    ]
    await stops.run()
    assert len(stopped) == 6  # each once


def test_the_order_stops_jobs_before_the_connectors_and_the_hosts_after_the_proxy() -> None:
    """Nothing answers through a stopped connector; the hosts' forwards outlast the
    requests the proxy finishes; the commands in flight finish before anything stops."""
    order = list(Stop)
    assert order[0] is Stop.IN_FLIGHT
    assert order.index(Stop.CONTROL) < order.index(Stop.SCHEDULER)  # a shell's, too
    # An answer read while stopping (finished as INBOUND stops) may hold notices back.
    assert order.index(Stop.INBOUND) < order.index(Stop.ORDERING) < order.index(Stop.CONNECTORS)
    assert order.index(Stop.SCHEDULER) < order.index(Stop.QUEUE) < order.index(Stop.CONNECTORS)
    assert order.index(Stop.DASHBOARD) < order.index(Stop.CONNECTORS) < order.index(Stop.FLEET)
    assert order.index(Stop.METERING) < order.index(Stop.HOSTS) < order.index(Stop.HEARTBEATS)
    assert order[-3:] == [Stop.STANDBY, Stop.LEDGER, Stop.LOCK]


async def test_a_step_that_raises_leaves_the_rest() -> None:
    """As a failing stop always did: the error comes out, the later parts stay up."""
    stopped: list[Stop] = []
    stops = Stops()

    async def broken() -> None:
        raise OSError("cannot close")

    async def ledger() -> None:
        stopped.append(Stop.LEDGER)

    stops.add(Stop.FLEET, broken)
    stops.add(Stop.LEDGER, ledger)
    with pytest.raises(OSError, match="cannot close"):
        await stops.run()
    assert stopped == []


def test_a_part_is_added_once() -> None:
    """Two stops for one part is a wiring mistake, refused at once."""
    stops = Stops()
    stops.add(Stop.FLEET, lambda: None)
    with pytest.raises(RuntimeError, match="fleet is already to be stopped"):
        stops.add(Stop.FLEET, lambda: None)
