"""`dashboard` typed in a shared, encrypted Matrix room on a real Synapse: the sign-in link
arrives only in a direct room the bot makes with the asker (encrypted, read by their
matrix-nio client after they accept), and the link signs in to the real dashboard."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.connectors.matrix.test_matrix_bot import BotProcess
from tests.integration.connectors.matrix.test_matrix_e2ee import (
    Encrypted,
    ask,
    encrypted_room,
    joined,
)
from tests.matrix_e2ee_user import EncryptedUser
from tests.matrix_user import Event
from tests.postgres_server import free_port
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]


class WithDashboard(Encrypted):
    port = 0

    def config(self) -> Path:
        path = super().config()
        path.write_text(path.read_text() + f"dashboard: {{listen: 127.0.0.1:{self.port}}}\n")
        return path


@pytest.fixture
async def dashboard_world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[WithDashboard]:
    async with encrypted_room(synapse, tmp_path, WithDashboard) as made:
        made.port = free_port()
        yield made


async def accept_and_read(user: EncryptedUser, shared: str, within: float = 60) -> Event:
    """Sync as Element would, accepting invitations, until a message arrives in a room other
    than ``shared``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await user.sync_once()
        for room in list(user.client.invited_rooms):
            await user.join(room)
        found = [e for e in user.events if e.room != shared and "/signin/" in e.body]
        if found:
            return found[0]
    raise AssertionError("no direct message with a link arrived")


async def test_the_link_comes_in_an_encrypted_direct_room_never_the_shared_one(
    dashboard_world: WithDashboard,
) -> None:
    """The room hears that a link was sent; the asker's own direct room holds it, readable
    only by them; it signs in once."""
    bot = BotProcess(dashboard_world)
    try:
        op = dashboard_world.operator
        await joined(op, dashboard_world.room, dashboard_world.bot)
        sent = await op.say(dashboard_world.room, "!dashboard")
        link_event = await accept_and_read(op, dashboard_world.room)
        assert link_event.sender == dashboard_world.bot
        assert link_event.event_id in op.decrypted  # encrypted, and their device read it
        reply = await ask(op, dashboard_world.room, "!whoami", dashboard_world.bot)
        answers = [e for e in op.events if e.room == dashboard_world.room and e.reply_to == sent]
        assert answers and "direct message" in answers[0].body
        assert all("/signin/" not in e.body for e in op.events if e.room == dashboard_world.room)
        assert reply.event_id in op.decrypted
        dm = op.client.rooms[link_event.room]
        assert set(dm.users) == {op.user_id, dashboard_world.bot} and dm.encrypted
        found = re.search(r"http://([^/\s]+)/signin/([A-Za-z0-9_-]+)", link_event.body)
        assert found is not None
        name, secret = found.groups()  # the dashboard's own name, *.localhost, and port
        assert name.endswith(f".localhost:{dashboard_world.port}")
        post = urllib.request.Request(  # to 127.0.0.1, as a browser resolves the name
            f"http://127.0.0.1:{dashboard_world.port}/signin",
            data=f"link={secret}".encode(),
            headers={"Sec-Fetch-Site": "same-origin", "Host": name},
            method="POST",
        )
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(post, timeout=10) as answer:  # follows the redirect, with the cookie
            assert answer.url == f"http://127.0.0.1:{dashboard_world.port}/"
            assert op.user_id in answer.read().decode()  # signed in as the asker
        with pytest.raises(urllib.error.HTTPError) as again:
            urllib.request.build_opener().open(post, timeout=10)
        assert again.value.code == 403
        again.value.close()
    finally:
        bot.stop()
