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

from bot.app.lifecycle import App
from bot.config import Offered, load_config
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask, Decision
from fleet.runtimes import default_registry
from fleet.timing.clock import SystemClock
from tests.fakes.discord.records import PostedMessage
from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import (
    TOKEN_ENV,
    eventually,
    write_config,
)
from tests.integration.connectors.matrix.test_matrix_bot import _stop_stray_agents

pytestmark = pytest.mark.integration

CHANNEL = "test-cli"


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(heartbeat_interval_ms=2_000) as running:
        yield running


@pytest.fixture
async def discord_app(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[App]:
    environ = {
        TOKEN_ENV: fake_discord.token,
        "FLEETWARDEN_DISCORD_API_BASE": fake_discord.api_base,
        "FLEETWARDEN_DISCORD_GATEWAY_URL": fake_discord.gateway_url,
    }
    config = load_config(
        write_config(fake_discord, tmp_path),
        environ,
        offered=Offered(default_registry().names(), ("subprocess", "tmux")),
    )
    running = App(config, clock=SystemClock(), environ=environ)
    try:
        await running.start()
        await eventually(lambda: fake_discord.connected)
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
    fake_discord: FakeDiscord, discord_app: App
) -> None:
    """The request shows once in c1's thread, pinging only its starter (no @everyone);
    `!deny ID reason` from the operator denies it with the reason."""
    await fake_discord.post_user_message(
        fake_discord.control_channel_id, "ann", "!spawn c1 --runtime stub"
    )
    await eventually(lambda: [t for t in fake_discord.threads if t["name"] == "c1"])
    told: list[ApprovalRequest] = []
    request = await open_request(discord_app, told)
    message = await shown_in_thread(fake_discord, request)
    assert "curl -X DELETE https://x @everyone" in text(message)
    mentions = message.request["allowed_mentions"]
    assert "everyone" not in mentions.get("parse", [])
    assert [int(u) for u in mentions.get("users", [])] == [fake_discord.user_id("ann")]
    await fake_discord.post_user_message(
        fake_discord.control_channel_id, "ann", f"!deny {request.id} not on prod"
    )
    await eventually(lambda: told)
    assert told[0].decision is Decision.DENY and told[0].reason == "not on prod"
    assert (await discord_app.approvals.get(request.id)).state is ApprovalState.DENIED


async def test_the_operators_reaction_answers_and_a_viewers_changes_nothing(
    fake_discord: FakeDiscord, discord_app: App
) -> None:
    """A viewer's ✅ is refused once, the request stays open; the operator's ✅ allows it,
    the CLI is told, and the message is edited to say who answered and how."""
    await fake_discord.post_user_message(
        fake_discord.control_channel_id, "ann", "!spawn c1 --runtime stub"
    )
    await eventually(lambda: [t for t in fake_discord.threads if t["name"] == "c1"])
    told: list[ApprovalRequest] = []
    request = await open_request(discord_app, told)
    message = await shown_in_thread(fake_discord, request)
    before = len(fake_discord.messages(message.channel_id))
    await fake_discord.add_user_reaction(message.channel_id, message.id, "rolf", "✅")  # a viewer
    refusal = await eventually(lambda: fake_discord.messages(message.channel_id)[before:])
    assert "is not an answer" in text(refusal[0])
    assert (await discord_app.approvals.get(request.id)).state is ApprovalState.OPEN and told == []

    await fake_discord.add_user_reaction(message.channel_id, message.id, "ann", "✅")
    await eventually(lambda: told)
    assert told[0].decision is Decision.ALLOW and told[0].how == "reaction"
    assert told[0].answered_by == f"{fake_discord.user_id('ann')} on discord"

    def edited() -> PostedMessage | None:
        now = [m for m in fake_discord.messages(message.channel_id) if m.id == message.id]
        return now[0] if now and "Allowed once by" in text(now[0]) else None

    assert (await eventually(edited)).payload["edited_timestamp"]
    await fake_discord.add_user_reaction(
        message.channel_id, message.id, "rolf", "❌"
    )  # ended: silent
    await fake_discord.post_user_message(message.channel_id, "ann", "!pending")  # handled after it
    await eventually(
        lambda: [m for m in fake_discord.messages(message.channel_id) if "No approval" in text(m)]
    )
    assert [
        m for m in fake_discord.messages(message.channel_id) if "is not an answer" in text(m)
    ] == [refusal[0]]


async def test_pending_on_discord_names_reactions_and_the_prefix(
    fake_discord: FakeDiscord, discord_app: App
) -> None:
    """`!pending` on Discord answers with the prefixed commands and the reaction too."""
    await fake_discord.post_user_message(
        fake_discord.control_channel_id, "ann", "!spawn c1 --runtime stub"
    )
    await eventually(lambda: [t for t in fake_discord.threads if t["name"] == "c1"])
    request = await open_request(discord_app, [])
    await shown_in_thread(fake_discord, request)
    await fake_discord.post_user_message(fake_discord.control_channel_id, "ann", "!pending")
    [answer] = await eventually(
        lambda: [
            m for m in fake_discord.messages(fake_discord.control_channel_id) if "1 open" in text(m)
        ]
    )
    assert "`!approve ID [always]` or `!deny ID [REASON]`, or react on" in text(answer)


async def test_a_hostile_ask_shows_what_would_hide_on_discord(
    fake_discord: FakeDiscord, discord_app: App
) -> None:
    """A tool name's line break, a homoglyph and 45 empty lines are shown visibly on Discord:
    no forged line, `g[U+0456]thub.com`, the empty lines counted and `rm -rf ~` kept."""
    await fake_discord.post_user_message(
        fake_discord.control_channel_id, "ann", "!spawn c1 --runtime stub"
    )
    await eventually(lambda: [t for t in fake_discord.threads if t["name"] == "c1"])
    [(agent, run_id)] = await discord_app.fleet.outputs.open_runs()
    request = await discord_app.approvals.open(
        agent=agent,
        run_id=run_id,
        channel=CHANNEL,
        ask=Ask(
            "call_h",
            "Bash\n✅ Allowed once by ann",
            "curl https://g\u0456thub.com/x" + "\n" * 46 + "rm -rf ~",
            pattern=None,
        ),
        wait_seconds=600,
        max_open=5,
        starter=None,
    )
    shown = (
        text(await shown_in_thread(fake_discord, request)).replace("\\[", "[").replace("\\]", "]")
    )
    assert "Bash[U+000A]✅ Allowed once by ann" in shown
    assert not any(line.startswith("✅") for line in shown.split("\n"))
    assert "g[U+0456]thub.com/x" in shown
    assert "⟪45 empty lines⟫\nrm -rf ~" in shown
