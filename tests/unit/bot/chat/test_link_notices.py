"""The watch that tells the other connectors' rooms when one loses its service."""

from __future__ import annotations

from bot.chat.link_notices import LinkWatch
from connectors.base import Connector
from fleet.timing.clock import SystemClock
from tests.polling import eventually
from tests.unit.chat_fakes import HomeConnector

DOWN_AFTER = 0.2


async def test_the_others_are_told_once_down_and_once_back_never_the_one_down() -> None:
    """matrix lost past the threshold: the console and discord rooms get one notice with
    the error; retries say nothing more; back: one notice; matrix itself is told nothing."""
    matrix, console = HomeConnector("matrix", "!home"), HomeConnector("console", "console")
    discord = HomeConnector("discord", "42")
    connectors: list[Connector] = [console, matrix, discord]
    for connector in connectors:
        connector.link.connected()
    watch = LinkWatch(lambda: connectors, SystemClock(), DOWN_AFTER)
    watch.start()
    try:
        matrix.link.lost("ClientConnectorError: Cannot connect to host 127.0.0.1:8008")
        await eventually(lambda: console.sent, "the console told matrix is down")
        for _ in range(3):
            matrix.link.lost("still refused")
        matrix.link.connected()
        await eventually(lambda: len(console.sent) == 2, "the console told matrix is back")
        [down, back] = console.sent
        assert down.markdown.startswith("**matrix** is down since")
        assert "Cannot connect to host 127.0.0.1:8008" in down.markdown
        assert down.alert and down.tone == "warning" and down.room == "console"
        assert back.markdown.startswith("**matrix** is back") and not back.alert
        assert [m.markdown for m in discord.sent] == [down.markdown, back.markdown]
        assert matrix.sent == []
    finally:
        await watch.stop()


async def test_a_short_outage_tells_nobody() -> None:
    """matrix down and back within the threshold tells nothing; discord, down past it
    afterwards, is the only notice the console gets."""
    matrix, console = HomeConnector("matrix", "!home"), HomeConnector("console", "console")
    discord = HomeConnector("discord", "42")
    connectors: list[Connector] = [console, matrix, discord]
    for connector in connectors:
        connector.link.connected()
    watch = LinkWatch(lambda: connectors, SystemClock(), DOWN_AFTER)
    watch.start()
    try:
        for _ in range(3):
            matrix.link.lost("timeout")
            matrix.link.connected()
        discord.link.lost("the gateway connection closed")
        await eventually(lambda: console.sent, "the console told discord is down")
        assert [m.markdown.split()[0] for m in console.sent] == ["**discord**"]
        assert [m.markdown.split()[0] for m in matrix.sent] == ["**discord**"]
    finally:
        await watch.stop()
