"""Approvals on Discord, against the fake Discord on loopback (REST and gateway in Discord's
wire shapes) with the real discord.py client: Fleetwarden's app runs in this process, so
the test opens a request as an agent's CLI would; it shows in the agent's thread, pinging
its starter and nobody else; a viewer's reaction changes nothing and the operator's ✅
answers it; the message is edited to say who."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.config import load_config
from fleet.approvals.model import ApprovalRequest, ApprovalState, Ask, Decision
from fleet.clock import SystemClock
from fleet.runtimes import default_registry
from tests.fakes.discord_server import FakeDiscord, PostedMessage
from tests.integration.test_discord_bot import TOKEN_ENV, eventually, write_config
from tests.integration.test_matrix_bot import _stop_stray_agents

pytestmark = pytest.mark.integration

CHANNEL = "test-cli"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(heartbeat_interval_ms=2_000) as running:
        yield running


@pytest.fixture
async def app(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[App]:
    environ = {
        TOKEN_ENV: fake.token,
        "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
        "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    config = load_config(
        write_config(fake, tmp_path),
        environ,
        runtimes=default_registry().names(),
        backends=("subprocess", "tmux"),
    )
    running = App(config, clock=SystemClock(), environ=environ)
    try:
        await running.start()
        await eventually(lambda: fake.connected)
        yield running
    finally:
        with contextlib.suppress(RuntimeError):  # the app did not get as far as its fleet
            for status in await running.fleet.ps():
                if status.state.is_live:
                    await running.fleet.stop_agent(status.name, force=True)
        await running.stop()
        _stop_stray_agents(tmp_path)


async def open_request(app: App, told: list[ApprovalRequest]) -> ApprovalRequest:
    """c1's run asks, as its CLI would, with ``told`` recording what the CLI is told."""

    async def deliver(request: ApprovalRequest) -> None:
        told.append(request)

    await app.approvals.register(CHANNEL, deliver)
    [(agent, run_id)] = await app.fleet.outputs.open_runs()
    return await app.approvals.open(
        agent=agent,
        run_id=run_id,
        channel=CHANNEL,
        ask=Ask("call_1", "Bash", "curl -X DELETE https://x @everyone", pattern=None),
        wait_seconds=600,
        max_open=5,
        starter=None,
    )


def text(message: PostedMessage) -> str:
    """What a message shows: its content and its embeds' text (a toned notice is an embed)."""
    embeds = message.payload.get("embeds") or []
    return "\n".join([message.content, *(str(e.get("description", "")) for e in embeds)])


async def shown_in_thread(fake: FakeDiscord, request: ApprovalRequest) -> PostedMessage:
    """The request's message, in c1's thread."""

    def find() -> PostedMessage | None:
        threads = [int(t["id"]) for t in fake.threads if t["name"] == "c1"]
        found = [m for t in threads for m in fake.messages(t) if f"`{request.id}`" in text(m)]
        return found[0] if found else None

    return await eventually(find)


async def test_an_approval_shows_in_the_thread_and_is_answered_by_command(
    fake: FakeDiscord, app: App
) -> None:
    """The request shows once in c1's thread, pinging only its starter (no @everyone);
    `!deny ID reason` from the operator denies it with the reason."""
    await fake.post_user_message(fake.control_channel_id, "ann", "!spawn c1 --runtime stub")
    await eventually(lambda: [t for t in fake.threads if t["name"] == "c1"])
    told: list[ApprovalRequest] = []
    request = await open_request(app, told)
    message = await shown_in_thread(fake, request)
    assert "curl -X DELETE https://x @everyone" in text(message)
    mentions = message.request["allowed_mentions"]
    assert "everyone" not in mentions.get("parse", [])
    assert [int(u) for u in mentions.get("users", [])] == [fake.user_id("ann")]
    await fake.post_user_message(fake.control_channel_id, "ann", f"!deny {request.id} not on prod")
    await eventually(lambda: told)
    assert told[0].decision is Decision.DENY and told[0].reason == "not on prod"
    assert (await app.approvals.get(request.id)).state is ApprovalState.DENIED
