"""The real pi in a live session (``pi --mode rpc``) driven by the ``pi-rpc`` protocol:
turns in order in one process, and an interrupt that ends a turn but keeps the process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.runtimes import RuntimeContext
from fleet.runtimes.pi import PiRuntime
from fleet.sessions.base import Alive, Closing, Effect, TurnEnded, Write
from fleet.sessions.pi_rpc import PiRpc
from tests.fakes.provider.server import Accepted, FakeProvider, Turn
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

DEADLINE = 60.0
KEY = "test-key-rpc"


class Session:
    """A test's driver: the process on pipes, every effect of every line it wrote."""

    def __init__(self, proc: asyncio.subprocess.Process, protocol: PiRpc) -> None:
        self.proc = proc
        self.protocol = protocol
        self.effects: asyncio.Queue[Effect] = asyncio.Queue()

    def write(self, effects: Sequence[Effect]) -> None:
        assert self.proc.stdin is not None
        for effect in effects:
            if isinstance(effect, Write):
                self.proc.stdin.write(effect.line.encode() + b"\n")
            else:
                self.effects.put_nowait(effect)

    async def pump(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.write(self.protocol.feed(line.decode()))

    async def until(self, wanted: Effect) -> None:
        """Wait for an effect equal to ``wanted``, passing over others."""
        async with asyncio.timeout(DEADLINE):
            while await self.effects.get() != wanted:
                pass


def plan(tmp_path: Path, fake: FakeProvider) -> LaunchPlan:
    path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
    ctx = RuntimeContext(
        home=tmp_path / "home",
        workdir=tmp_path / "work",
        environ={"PATH": ":".join(dict.fromkeys(path)), "ANTHROPIC_API_KEY": KEY},
        provider_urls={"anthropic": fake.base_url},
    )
    spec = AgentSpec(
        name=AgentName("pi-live"), runtime="pi", prompt="first", secret_env=("ANTHROPIC_API_KEY",)
    )
    return PiRuntime(str(cli("pi"))).plan(spec, ctx)


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[tuple[Session, FakeProvider]]:
    async with FakeProvider(default=Turn(text="fine"), accept=Accepted(frozenset({KEY}))) as fake:
        launch = plan(tmp_path, fake)
        assert launch.session == "pi-rpc" and launch.takes_input and launch.prompt == "first"
        for file, text in launch.files.items():
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
        launch.cwd.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            *launch.argv,
            cwd=launch.cwd,
            env=dict(launch.env),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        driver = Session(proc, PiRpc())
        pump = asyncio.create_task(driver.pump())
        try:
            yield driver, fake
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


def user_texts(fake: FakeProvider) -> list[str]:
    """The last user message of each model request, in order."""
    texts = []
    for request in fake.requests:
        messages = (request.body or {}).get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        if users:
            content = users[-1]["content"]
            texts.append(content if isinstance(content, str) else content[0].get("text", ""))
    return texts


async def test_turns_arrive_in_order_in_one_process(
    session: tuple[Session, FakeProvider],
) -> None:
    """Three turns, two of them sent while the first runs: one process answers them in the
    order sent, each ending in its own turn end; then the session ends the process (exit 0)."""
    driver, fake = session
    fake.add(Turn(text="slow " * 20, delay_between_events=0.05))
    driver.write(driver.protocol.opening("first"))
    driver.write(driver.protocol.turn("second"))
    driver.write(driver.protocol.turn("third"))
    for _ in range(3):
        await driver.until(TurnEnded())
    await driver.until(Closing())  # the work is done: pi is asked to end, and does
    assert await asyncio.wait_for(driver.proc.wait(), DEADLINE) == 0
    assert user_texts(fake) == ["first", "second", "third"]


async def test_an_interrupt_ends_the_turn_and_keeps_the_process(
    session: tuple[Session, FakeProvider],
) -> None:
    """An interrupt during a slow turn ends it; the same process then takes the next turn."""
    driver, fake = session
    fake.add(Turn(text="slow " * 100, delay_between_events=0.05))
    driver.write(driver.protocol.opening("long one"))
    await driver.until(Alive("working"))
    driver.write(driver.protocol.interrupt())
    async with asyncio.timeout(3.0):  # the slow turn alone would take 5 s
        await driver.until(TurnEnded())
    await driver.until(Alive("waiting"))  # interrupted, the process stays
    assert driver.proc.returncode is None
    driver.write(driver.protocol.turn("after"))
    await driver.until(TurnEnded())
    assert user_texts(fake)[-1] == "after"
