"""The real ``fleetwarden run`` serving a Slack control channel of the fake Slack
(:mod:`tests.fakes.slack`): Socket Mode with the real slack-bolt inside Fleetwarden, the
people of the workspace writing, reacting, clicking and stopping sessions as the Slack app
lets them, and what the fake holds read back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests import polling
from tests.fakes.slack.server import slack_server
from tests.fakes.slack.socket_mode import Hub
from tests.fakes.slack.state import Message
from tests.fakes.slack.world import SlackWorld
from tests.integration.console_bot import FLEETWARDEN, clean_env, stub_processes_in

BOT_ENV = "FW_SLACK_BOT_TOKEN"
APP_ENV = "FW_SLACK_APP_TOKEN"
TIMEOUT = 30.0
T = TypeVar("T")


async def eventually(probe: Callable[[], T | None], within: float = TIMEOUT) -> T:
    """:func:`tests.polling.eventually` with this rig's patience."""
    found = await polling.eventually(probe, "what the fake Slack holds to show it", within)
    assert found is not None
    return found


@dataclass
class People:
    """The workspace's people: ann operates, vic views (through the user group), sam is
    a stranger."""

    ann: str
    vic: str
    sam: str
    viewers: str  # the user group vic is in


@dataclass
class SlackRun:
    """The fake Slack, its people, and `fleetwarden run` connected to it."""

    world: SlackWorld
    people: People
    channel: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    agents: list[str] = field(default_factory=list)

    # -- reading ----------------------------------------------------------------------

    def bots(self, thread: str | None = None) -> list[Message]:
        """What the bot posted in the channel (its top level) or in ``thread``."""
        every = self.world.messages(self.channel, thread)
        if thread is None:
            every = [m for m in every if m.thread_ts in (None, m.ts)]
        return [m for m in every if m.bot_id is not None]

    def thread_of(self, agent: str) -> str | None:
        """The ts of ``agent``'s thread, from the ledger's topic ↔ thread mapping."""
        import sqlite3

        ledger = self.workdir / "state" / "ledger.db"
        if not ledger.exists():
            return None
        db = sqlite3.connect(ledger)
        try:
            row = db.execute(
                "SELECT thread_id FROM threads WHERE connector = 'slack' AND topic = ?",
                (agent,),
            ).fetchone()
        finally:
            db.close()
        return None if row is None else str(row[0])

    async def says(
        self, user: str, text: str, thread: str | None = None, *, mention: bool = False
    ) -> str:
        """``user`` writes ``text`` (after the bot's mention when ``mention``)."""
        return await self.world.person_says(
            user, self.channel, text, thread_ts=thread, mention=mention
        )

    async def answer(
        self, user: str, text: str, thread: str | None = None, *, mention: bool = False
    ) -> list[Message]:
        """``text`` from ``user``, and what the bot posts where it was written until it
        goes quiet for a second."""
        before = len(self.bots(thread))
        await self.says(user, text, thread, mention=mention)
        await eventually(lambda: len(self.bots(thread)) > before)
        count = -1
        while count != len(self.bots(thread)):
            count = len(self.bots(thread))
            await asyncio.sleep(1.0)
        return self.bots(thread)[before:]

    async def posted(self, pattern: str, thread: str | None = None) -> Message:
        """The first message of the bot's (in ``thread``) whose text holds ``pattern``."""

        def find() -> Message | None:
            return next((m for m in self.bots(thread) if pattern in m.text), None)

        return await eventually(find)

    # -- the process ------------------------------------------------------------------

    def stop(self) -> str:
        """Stop `fleetwarden run` (SIGTERM); its stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        for agent in self.agents:
            for pid in stub_processes_in(self.workdir / "state" / "agents" / agent / "work"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return err.decode(errors="replace")


def config_text(run: SlackRun, agents: str = "", more: str = "", operators: str = "") -> str:
    """A config serving ``run``'s channel: ann an operator, the viewers' group viewers
    (``operators``: more entries of the list)."""
    return (
        "state_dir: ./state\n"
        "operators:\n"
        f"  - {{id: {run.people.ann}, role: operator}}\n"
        f"  - {{id: 'usergroup:{run.people.viewers}', role: viewer}}\n"
        f"{operators}"
        "connectors:\n"
        "  slack:\n"
        f"    bot_token_env: {BOT_ENV}\n"
        f"    app_token_env: {APP_ENV}\n"
        f"    channel_id: {run.channel}\n"
        "defaults:\n"
        "  stop_grace_seconds: 1\n"
        f"{more}"
        f"agents:\n{agents or '  []'}\n"
    )


@contextlib.asynccontextmanager
async def slack_run(
    workdir: Path,
    *,
    agents: str = "",
    more: str = "",
    env: dict[str, str] | None = None,
    names: tuple[str, ...] = (),
    setup: Callable[[SlackWorld], None] | None = None,
    world: SlackWorld | None = None,
    operators: str = "",
) -> AsyncIterator[SlackRun]:
    """The fake Slack and `fleetwarden run` on it (``agents``: the roster's entries,
    ``more``: other top-level sections, ``names``: the agents whose processes are killed
    at the end, ``world``: a workspace the test made, ``operators``: more entries of the
    list); stopped however the test ends, and never a token in its stderr."""
    world = world or SlackWorld()
    world.ack_timeout = 1.0
    world.refresh_grace = 1.0
    if setup is not None:
        setup(world)
    ann, vic, sam = world.add_user("ann"), world.add_user("vic"), world.add_user("sam")
    viewers = world.add_usergroup("fleet-viewers", [vic])
    channel = world.add_channel("fleet-control", members=[ann, vic, sam])
    run = SlackRun(world, People(ann, vic, sam, viewers), channel, workdir, agents=list(names))
    config = workdir / "fleetwarden.yaml"
    config.write_text(config_text(run, agents, more, operators))
    async with slack_server(world) as server:
        run.proc = launch(config, workdir, world, server.api_base, env or {})
        try:
            await eventually(lambda: _connected(world))
            yield run
        except BaseException as exc:
            exc.add_note(f"fleetwarden run's stderr:\n{await asyncio.to_thread(run.stop)}")
            raise
        err = await asyncio.to_thread(run.stop)  # the fake Slack serves its goodbyes
        for secret in (world.bot_token, world.app_token):
            assert secret not in err
        assert "Traceback" not in err, err


def launch(
    config: Path, workdir: Path, world: SlackWorld, api_base: str, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """`fleetwarden run` on ``config``, its tokens ``world``'s, its Slack at ``api_base``."""
    return subprocess.Popen(
        [str(FLEETWARDEN), "run", "--config", str(config)],
        cwd=workdir,
        env=clean_env(
            **{
                BOT_ENV: world.bot_token,
                APP_ENV: world.app_token,
                "FLEETWARDEN_SLACK_API_BASE": api_base,
                **env,
            }
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _connected(world: SlackWorld) -> bool:
    """Whether Fleetwarden holds a Socket Mode connection."""
    return isinstance(world.sockets, Hub) and bool(world.sockets.open_links)
