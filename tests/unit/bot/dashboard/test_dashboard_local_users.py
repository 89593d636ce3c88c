"""Another local user against the dashboard, on a real server on loopback: `nobody` holds
sign-in posts whose body never comes, from every address of 127.0.0.1–127.0.0.6 (any local
user may bind any of 127.0.0.0/8), and opens each one the server closes again; a signed-in
operator arriving from 127.0.0.1 (as an SSH tunnel does) keeps getting answers."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.dashboard.serving import listener
from fleet.connections.limits import Limits
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests import sandbox_need
from tests.polling import eventually
from tests.unit.bot.dashboard.test_dashboard_server import serve, signed_in

NOBODY = 65534
AS_NOBODY: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": [], "cwd": "/"}
SOURCES = [f"127.0.0.{n}" for n in range(1, 7)]
CAP = 256  # the dashboard's connections in all, here: a quarter for one local user
EACH = 50  # busy connections kept per source address: more than the cap, all together
# Standard library only, as `nobody`: keeps EACH sign-in posts open from each source
# address (their body never comes), opening again every one the server answered or closed.
ATTACK = """\
import socket, sys, time
port, each, sources = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
post = (
    f"POST /signin HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\nSec-Fetch-Site: same-origin\\r\\n"
    "Content-Type: application/x-www-form-urlencoded\\r\\nContent-Length: 1000\\r\\n\\r\\n"
).encode()
held = {source: [] for source in sources}
while True:
    for source, socks in held.items():
        for sock in list(socks):
            try:
                sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
            except BlockingIOError:
                continue  # open, its body still awaited
            except OSError:
                pass
            socks.remove(sock)  # answered (refused) or closed
            sock.close()
        for _ in range(each - len(socks)):
            sock = socket.socket()
            try:
                sock.settimeout(5)
                sock.bind((source, 0))
                sock.connect(("127.0.0.1", port))
                sock.sendall(post)
            except OSError:
                sock.close()
            else:
                sock.settimeout(None)  # a look at it never waits
                socks.append(sock)
    time.sleep(0.25)
"""


def python_for_nobody() -> str:
    """A Python `nobody` can run (the test's own may sit in a closed home directory)."""
    found = (shutil.which(name) for name in ("python3", "/usr/bin/python3"))
    for python in (sys.executable, *(path for path in found if path)):
        python = os.path.realpath(python)
        try:
            done = subprocess.run(
                [python, "-I", "-S", "-c", "pass"], **AS_NOBODY, capture_output=True, timeout=30
            )
        except OSError:
            continue
        if done.returncode == 0:
            return python
    sandbox_need.missing("no Python here that `nobody` may run")


@sandbox_need.root("needs root to connect as another local user (`nobody`)")
async def test_a_local_user_keeping_busy_connections_from_many_addresses_locks_no_one_out(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The other user's connections count against that user, whatever address each comes
    from: it holds a quarter of the cap, every one busy, and each new one past it is
    refused at once; the operator's connections, from 127.0.0.1 too, are the operator's,
    and each new one is served."""
    python = python_for_nobody()
    monkeypatch.setattr(listener, "LIMITS", Limits(max_connections=CAP))
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    port = server.port or 0
    base = f"http://127.0.0.1:{port}"
    assert server._listening is not None
    admission = server._listening.admission
    jar = aiohttp.CookieJar(unsafe=True)
    # A new connection for every request: each must get past admission on its own.
    operator = aiohttp.ClientSession(
        cookie_jar=jar, connector=aiohttp.TCPConnector(force_close=True)
    )
    attacker: asyncio.subprocess.Process | None = None
    try:
        await signed_in(operator, base, signins)
        attacker = await asyncio.create_subprocess_exec(
            *(python, "-I", "-S", "-c", ATTACK, str(port), str(EACH), *SOURCES),
            **AS_NOBODY,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        theirs = f"uid {NOBODY}"

        def turned_away() -> int:
            return admission.counts.refused + admission.counts.refused_peer

        await eventually(turned_away, "the other user's connections past its share refused")
        for turn in range(10):
            before = turned_away()
            await eventually(
                lambda: turned_away() > before,  # noqa: B023
                "the other user still opening connections, and refused",
            )
            async with operator.get(f"{base}/api/fleet") as reply:
                assert reply.status == 200, f"turn {turn}: {reply.status} {await reply.text()}"
                assert "agents" in await reply.json()
        # Its whole share, every one busy (a body awaited), from six addresses.
        assert admission.from_peer(theirs) == admission.max_per_peer == CAP // 4
        if attacker.returncode is not None:  # it stopped: say why
            _, errors = await attacker.communicate()
            pytest.fail(f"the attack stopped: {errors.decode(errors='replace')}")
        assert admission.from_peer("127.0.0.1") == 0  # no address is anyone's here
        attacker.kill()
        await attacker.communicate()
        await eventually(lambda: admission.from_peer(theirs) == 0, "its connections let go")
        # Hanging up mid-body is no failure of the dashboard's: nothing logged for it.
        assert not [r for r in caplog.records if r.name.startswith("bot.dashboard")]
    finally:
        if attacker is not None:
            if attacker.returncode is None:
                attacker.kill()
            await attacker.communicate()
        await operator.close()
        await server.stop()
