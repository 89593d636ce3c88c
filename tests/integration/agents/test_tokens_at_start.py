"""The tokens a restarted heartbeat endpoint loads from ``heartbeat.json`` are accepted at
no door until the start has swept them (``keep_only``: which runs go on): a leaked token of
a run that ended while Fleetwarden was away gets ``503 Fleetwarden is starting: try again``
at the beats, the asks and the git door (real git) — never a branch — and once the sweep
has run it is refused for good, while a reattached run's beats land again and a token
issued during the start (a new run's) is taken at once."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fleet.connections.loopback import STARTING
from fleet.connections.token import TOKEN_HEADER
from fleet.names import AgentName
from fleet.repos.door.server import GitDoor
from fleet.runtimes.stub_agent import Heartbeat
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.polling import eventually

pytestmark = pytest.mark.integration


class Beats:
    """The endpoint's ``on_beat``: the agents whose beats landed, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, agent: str, kind: str) -> None:
        self.seen.append(agent)


def endpoint(state: Path, beats: Beats) -> HeartbeatServer:
    """A heartbeat endpoint with its git door (every agent has a line: ``None`` answers
    404, so a token taken shows as 404, one refused as 403 or 503)."""

    async def resolve(agent: AgentName, repo: str) -> Path | None:
        return None

    async def on_refusals(agent: AgentName, repo: str, found: list[dict[str, str]]) -> None:
        pass

    return HeartbeatServer(state, beats, gits=GitDoor(resolve, on_refusals))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def beat(http: aiohttp.ClientSession, port: int, agent: str, token: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}/heartbeat/{agent}"
    async with http.post(url, headers={TOKEN_HEADER: token}) as response:
        return response.status, await response.text()


async def ask(http: aiohttp.ClientSession, port: int, agent: str, token: str) -> int:
    url = f"http://127.0.0.1:{port}/ask/{agent}"
    async with http.post(url, headers={TOKEN_HEADER: token}, data=b"{}") as response:
        return response.status


async def git_door(http: aiohttp.ClientSession, port: int, agent: str, token: str) -> int:
    """The status of a clone's first request to ``agent``'s line through the git door."""
    url = f"http://127.0.0.1:{port}/git/{agent}/app.git/info/refs?service=git-upload-pack"
    basic = base64.b64encode(f"{agent}:{token}".encode()).decode()
    async with http.get(url, headers={"Authorization": f"Basic {basic}"}) as response:
        return response.status


async def ls_remote(tmp: Path, port: int, agent: str, token: str) -> str:
    """Real git reaching ``agent``'s line with ``token``: what it prints on stderr."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "ls-remote",
        f"http://{agent}:{token}@127.0.0.1:{port}/git/{agent}/app.git",
        cwd=tmp,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), "GIT_TERMINAL_PROMPT": "0"},
    )
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode != 0
    return err.decode(errors="replace")


async def test_a_loaded_token_opens_no_door_until_the_start_sweeps_it(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Between listening and the sweep, a loaded token gets 503 with the reason at every
    door (a wrong one still 403, a new run's token 204); after it, an ended run's is 403
    and a reattached run's beats (the stub agent's, retried on schedule) land again."""
    state, beats = tmp_path / "state", Beats()
    before = endpoint(state, beats)
    await before.start()
    ended, going = before.token_for("ended-1"), before.token_for("going-1")
    await before.stop()  # Fleetwarden stops; ended-1's run ends while it is away

    after = endpoint(state, beats)

    async def answer(agent: str, body: bytes) -> bytes:
        return b"{}"

    after.take_asks(answer)
    await after.start()
    port = after.port
    heart = Heartbeat(after.url_for("going-1"), going, interval=0.05)
    heart.start()  # the reattached agent beats on through the start
    try:
        assert await beat(http, port, "ended-1", ended) == (503, STARTING + "\n")
        assert await beat(http, port, "going-1", going) == (503, STARTING + "\n")
        assert (await beat(http, port, "ended-1", "not-its-token"))[0] == 403
        assert await ask(http, port, "ended-1", ended) == 503
        assert await git_door(http, port, "ended-1", ended) == 503
        assert "503" in await ls_remote(tmp_path, port, "ended-1", ended)
        fresh = after.token_for("new-1")  # a launch during the start: a new run's token
        assert (await beat(http, port, "new-1", fresh))[0] == 204
        assert "going-1" not in beats.seen and "ended-1" not in beats.seen

        assert after.keep_only(["going-1", "new-1"]) == [AgentName("ended-1")]  # the sweep
        await eventually(lambda: "going-1" in beats.seen, "the reattached agent's next beat")
        assert (await beat(http, port, "going-1", going))[0] == 204
        assert (await beat(http, port, "ended-1", ended))[0] == 403
        assert await ask(http, port, "ended-1", ended) == 403
        assert await git_door(http, port, "ended-1", ended) == 403
        assert await git_door(http, port, "going-1", going) == 404  # taken: it has no line
    finally:
        await asyncio.to_thread(heart.stop)
        await after.stop()
    assert "ended-1" not in beats.seen
