"""The emergency levers on Discord: the real `fleetwarden run` against the fake Discord, a
real stub agent. `!freeze all` in the control channel asks; a plain `yes` from another
person is refused with why; the admin's plain `yes` (no prefix) freezes the agent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import (
    TOKEN_ENV,
    eventually,
    launch,
    serving,
)
from tests.integration.console_bot import stub_processes_in
from tests.integration.paused import pauses

pytestmark = pytest.mark.integration


def admin_config(fake: FakeDiscord, workdir: Path) -> Path:
    path = workdir / "fleetwarden.yaml"
    path.write_text(
        "state_dir: ./state\n"
        "operators:\n"
        f"  - {{id: '{fake.user_id('ada')}', role: admin}}\n"
        f"  - {{id: '{fake.user_id('ann')}', role: operator}}\n"
        "connectors:\n"
        "  discord:\n"
        f"    token_env: {TOKEN_ENV}\n"
        f"    guild_id: '{fake.guild_id}'\n"
        f"    channel_id: '{fake.control_channel_id}'\n"
        "    guild_ready_timeout_seconds: 0.2\n"
    )
    return path


def launch_as_admin(fake: FakeDiscord, workdir: Path) -> subprocess.Popen[bytes]:
    return launch(fake, workdir, admin_config(fake, workdir))


async def test_a_plain_yes_from_the_admin_confirms_freeze_all(tmp_path: Path) -> None:
    """On Discord, `yes` without the prefix confirms the admin's `!freeze all`; an
    operator's `yes` before it is refused, naming whose question it is."""
    async with serving(tmp_path, launch_as_admin) as bot:
        await bot.ask("ada", '!spawn solo --prompt "count to 2"')
        work = tmp_path / "state" / "agents" / "solo" / "work"
        await eventually(lambda: stub_processes_in(work))
        pids = stub_processes_in(work)

        (asked,) = await bot.ask("ada", "!freeze all")
        assert "would pause 1 agent now: solo." in asked.content
        assert "Reply `yes` here within 60 s" in asked.content
        (refused,) = await bot.ask("ann", "yes")
        assert f"waits for the reply of {bot.fake.user_id('ada')}" in refused.content
        assert True not in pauses(pids)

        (done,) = await bot.ask("ada", "yes")
        assert done.content.startswith("Froze 1 agent: solo.")
        await eventually(lambda: pauses(pids) == {True})
        (resumed,) = await bot.ask("ada", "!resume all")
        assert resumed.content.startswith("Resumed 1 agent:")
        await eventually(lambda: True not in pauses(pids))
        await bot.ask("ada", "!stop solo --force")
