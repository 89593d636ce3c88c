"""Fleetwarden's own git against an upstream that takes the connection and never answers
(a tarpit on 127.0.0.1): the time limit ends it — ``git`` and the ``git-remote-http`` it
started, whose pipes would otherwise keep the wait going — and a cancelled git (a Ctrl-C
while it ran) leaves no process behind either."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator

import pytest

from fleet.repos.git import GitFailed, git

pytestmark = pytest.mark.integration


@pytest.fixture
def tarpit() -> Iterator[str]:
    """An http url on 127.0.0.1 whose server accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/slow.git"
    finally:
        server.close()


def _helpers(url: str) -> list[str]:
    """The processes still running for ``url`` (git, or its remote helper)."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if url in line]


async def test_the_time_limit_ends_git_and_its_remote_helper(tarpit: str) -> None:
    """`ls-remote` limited to 2 s: refused as too slow within seconds, nothing left."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(GitFailed, match="took longer than 2 s"):
        await asyncio.wait_for(git(None, ["ls-remote", tarpit], limit=2), 30)
    assert loop.time() - began < 15
    await asyncio.sleep(0.2)
    assert _helpers(tarpit) == []


async def test_a_cancelled_git_leaves_no_process(tarpit: str) -> None:
    """A git cancelled mid-fetch (the app stopping) ends whole before the cancel returns."""
    task = asyncio.create_task(git(None, ["ls-remote", tarpit], limit=120))
    for _ in range(100):  # until its remote helper is connected
        await asyncio.sleep(0.05)
        if any("remote-http" in line for line in _helpers(tarpit)):
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    await asyncio.sleep(0.2)
    assert _helpers(tarpit) == []
