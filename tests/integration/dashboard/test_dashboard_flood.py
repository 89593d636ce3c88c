"""A local user flooding the dashboard's port with idle connections, against the real
``fleetwarden run`` under an open-file limit of 1,024: while 1,100 connections that send
nothing are held open (each one the server closes is opened again), a spawn, a metered
model request and a signed-in page in Chromium all work, and once the flood stops every
one of its connections is closed by the server within the deadline for a first request."""

from __future__ import annotations

import contextlib
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.dashboard_rig import browser, need_chromium, running, sign_in

pytestmark = pytest.mark.integration

FLOOD = 1100
LIMIT = 1024  # the orchestrator's open-file limit, soft and hard: it cannot raise it
FIRST_REQUEST = 5.0  # seconds the dashboard gives a new connection to send its request
# Runs the rest of the command line under the limit (ConsoleBot's prefix execs it).
UNDER_LIMIT = (
    sys.executable,
    "-c",
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, {LIMIT})); "
    "os.execv(sys.argv[1], sys.argv[1:])",
)


@dataclass
class Flood:
    """Connections to ``port`` that never send a byte, kept at ``size`` from a thread."""

    port: int
    size: int
    held: list[socket.socket] = field(default_factory=list)
    opened: int = 0
    failed: int = 0  # connects refused or timed out
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.held = [sock for sock in self.held if not _closed(sock, drop=True)]
            while len(self.held) < self.size and not self.stop.is_set():
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), 10)
                except OSError:
                    self.failed += 1
                else:
                    sock.setblocking(False)  # so that looking at it never waits
                    self.held.append(sock)
                    self.opened += 1
            self.stop.wait(1.0)  # an attacker's round: what was closed is opened again


def _closed(sock: socket.socket, *, drop: bool = False) -> bool:
    """Whether the server closed ``sock``, or said something (a refusal, which it closes
    right after); closed here too when ``drop``."""
    try:
        sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        return False  # open, and silent
    except OSError:
        pass
    if drop:
        sock.close()
    return True


@contextlib.contextmanager
def flooding(port: int) -> Iterator[Flood]:
    flood = Flood(port, FLOOD)
    thread = threading.Thread(target=flood.run, name="flood", daemon=True)
    thread.start()
    try:
        yield flood
    finally:
        flood.stop.set()
        thread.join(30)


@pytest.fixture
def open_files() -> None:
    """This process holds the whole flood's sockets: raise its own limit, or skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FLOOD + 1024
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"the hard open-file limit {hard} is below the {need} the flood needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def test_idle_connections_to_the_dashboard_starve_nothing(tmp_path: Path, open_files: None) -> None:
    """1,100 idle connections held against the dashboard's port of an orchestrator that
    may open 1,024 files: a spawn, a metered request and a signed-in page all answer
    meanwhile; the flood's connections are closed by the server, and the orchestrator
    never runs out of descriptors."""
    need_chromium()
    with running(tmp_path, ["asker"], prefix=UNDER_LIMIT) as rig, browser() as chromium:
        context = chromium.new_context()
        page = context.new_page()
        sign_in(page, rig.link())
        home = page.url
        with flooding(rig.port) as flood:
            deadline = time.monotonic() + 30
            while flood.opened < FLOOD:
                assert time.monotonic() < deadline, f"only {flood.opened} connections opened"
                time.sleep(0.05)
            rig.bot.command("spawn asker", r"asker", timeout=30)
            rig.bot.command("send asker ask 1", r"answer 1/1: metered answer", timeout=30)
            answer = page.goto(home)
            assert answer is not None and answer.status == 200
            page.wait_for_selector('tr[data-agent="asker"]', timeout=10000)
            opened_during = flood.opened
        assert flood.failed == 0  # accepted, then closed: never a failed connect
        assert opened_during > FLOOD  # the server closed some, and they were opened again
        deadline = time.monotonic() + FIRST_REQUEST + 5
        while not all(_closed(sock) for sock in flood.held):
            still = sum(not _closed(sock) for sock in flood.held)
            assert time.monotonic() < deadline, f"{still} idle connections still open"
            time.sleep(0.1)
        for sock in flood.held:
            sock.close()
        context.close()
        assert rig.bot.proc.poll() is None
        log = (tmp_path / "state" / "fleetwarden.log").read_text(errors="replace")
        assert "Too many open files" not in log and "out of system resource" not in log
        assert "Too many open files" not in rig.bot.stderr
