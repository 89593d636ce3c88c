"""An agent flooding Fleetwarden's loopback servers with idle connections, against the real
metering proxy and heartbeat endpoint in a process whose open-file limit is 1,024: another
agent's beats and model requests keep succeeding throughout, the flood's connections are
closed (to make room, or after the idle deadline), and the servers never run out of file
descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fleet.connections.token import TOKEN_HEADER
from tests.fakes.provider.server import FAKE_KEY, FakeProvider

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
IDLE = 1.0  # seconds the child's servers give a new connection's first request
FLOOD = {"proxy": 1500, "heartbeat": 400}  # idle connections the flooder opens
BODY = json.dumps(
    {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
).encode()
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
def open_files() -> None:
    """This process holds the whole flood's sockets: raise its own limit, or skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = sum(FLOOD.values()) + 512
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"the hard open-file limit {hard} is below the {need} the flood needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@pytest.fixture
async def child(tmp_path: Path, open_files: None) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    # Its log goes to a file: a pipe nobody reads while the flood runs could fill and stall it.
    log = (tmp_path / "child.log").open("wb")
    async with FakeProvider() as fake:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.loopback.loopback_child",
            str(tmp_path),
            fake.base_url,
            str(IDLE),
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the servers' process ended before it listened"
            yield process, json.loads(line)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
            log.close()


async def flood(port: int, count: int, into: list[Conn]) -> int:
    """Open ``count`` connections to ``port`` that send nothing, 50 at a time; how many
    the kernel or the server refused outright."""
    refused = 0
    for start in range(0, count, 50):
        tries = [asyncio.open_connection("127.0.0.1", port) for _ in range(min(50, count - start))]
        for made in await asyncio.gather(*tries, return_exceptions=True):
            if isinstance(made, BaseException):
                refused += 1
            else:
                into.append(made)
    return refused


async def keep_going(
    ready: dict[str, Any], until: asyncio.Event, tries: dict[str, int]
) -> list[tuple[str, int, float]]:
    """The other agent: a beat and a model request, each on a new connection, over and
    over, until told to stop; what each finally got, and when (``tries`` counts every
    attempt, retries included)."""
    got: list[tuple[str, int, float]] = []
    beat_url, token = ready["beat_urls"]["victim"], ready["tokens"]["victim"]
    model_url = ready["urls"]["victim"] + "/v1/messages"
    timeout = aiohttp.ClientTimeout(total=10)
    # A new connection each time, as a hook that runs curl for each beat would open.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        while not until.is_set():
            for what, url, headers in (
                ("beat", beat_url, {TOKEN_HEADER: token}),
                ("model", model_url, {"x-api-key": FAKE_KEY}),
            ):
                got.append((what, await _try(http, url, headers, what, tries), time.monotonic()))
    return got


async def _try(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], what: str, tries: dict[str, int]
) -> int:
    """POST as the providers' SDKs do: a connection that breaks, or a 503, is tried again,
    twice at most (a connection opened in the middle of a burst of the flood's may be the
    one closed to make room); the last status, 0 for a broken connection."""
    status = 0
    for _ in range(3):
        tries[what] = tries.get(what, 0) + 1
        try:
            async with http.post(
                url, data=BODY if "/v1/" in url else None, headers=headers
            ) as answer:
                await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if status not in (0, 503):
            return status
    return status


async def hung_up(conn: Conn, seconds: float) -> bool:
    """Whether the server closed ``conn`` within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await conn[0].read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_a_flood_of_idle_connections_starves_no_other_agent(
    child: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    """1,500 idle connections to the proxy and 400 to the heartbeat endpoint, under an
    open-file limit of 1,024: the other agent's beats and requests all succeed meanwhile,
    every flood connection is closed within the idle deadline, and nothing runs out."""
    process, ready = child
    assert ready["nofile"] == 1024
    assert ready["caps"]["proxy"] + ready["caps"]["heartbeat"] < 1024
    held: list[Conn] = []
    stop = asyncio.Event()
    tries: dict[str, int] = {}
    victim = asyncio.create_task(keep_going(ready, stop, tries))
    try:
        started = time.monotonic()
        refused = await flood(ready["proxy"], FLOOD["proxy"], held)
        refused += await flood(ready["heartbeat"], FLOOD["heartbeat"], held)
        # The flood lasts until its last connections are closed, IDLE after they opened:
        # the other agent's turns until then are turns during the flood.
        await asyncio.sleep(IDLE * 0.8)
        ended = time.monotonic()
        stop.set()
        got = await victim
        during = {what for what, _, at in got if started <= at <= ended}
        assert during == {"beat", "model"}, "the other agent got no turn during the flood"
        failed = [(what, status) for what, status, _ in got if status not in (200, 204)]
        assert failed == []
        assert refused == 0  # accepted, then closed: never a failed connect
        closed = await asyncio.gather(*(hung_up(conn, IDLE + 5.0) for conn in held))
        assert all(closed), f"{closed.count(False)} flood connections still open"
    finally:
        stop.set()
        await victim
        for _, writer in held:
            writer.close()
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    counts = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    # Every beat answered was recorded; a retried one may have been recorded before its
    # connection broke under the flood (a loaded machine), never more than was tried.
    answered = sum(what == "beat" for what, _, _ in got)
    assert answered <= counts["beats"]["victim"] <= tries["beat"]
    for server in ("proxy", "heartbeat"):
        made_room = counts[server]["evicted"] + counts[server]["expired"]
        assert made_room >= FLOOD[server] - ready["caps"][server], (server, counts)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 10)
    errors = (tmp_path / "child.log").read_text(errors="replace")
    assert "Too many open files" not in errors and "out of system resource" not in errors, errors
    assert ended - started < 60
