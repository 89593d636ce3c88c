"""The open-file limit: how far it is raised, what is kept back, and each server's share;
and the real ``setrlimit`` in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.dashboard.serving.listener import LIMITS as DASHBOARD
from fleet.connections.limits import Limits
from fleet.connections.openfiles import (
    ACCEPT_BURST,
    CEILING,
    RESERVE_MIN,
    OpenFiles,
    connection_cap,
    reserve,
    wanted,
)
from fleet.metering.config import MeteringSettings

REPO = Path(__file__).resolve().parents[4]


def test_the_soft_limit_goes_to_the_hard_one_within_the_ceiling() -> None:
    """Raised to the hard limit, at most the ceiling, never lowered."""
    assert wanted(OpenFiles(1024, 4096)) == 4096
    assert wanted(OpenFiles(1024, 1_048_576)) == CEILING
    assert wanted(OpenFiles(1024, None)) == CEILING
    assert wanted(OpenFiles(1024, 1024)) == 1024
    assert wanted(OpenFiles(100_000, None)) == 100_000


def test_a_reserve_is_always_kept_back() -> None:
    """An eighth of the limit, at least RESERVE_MIN, and an accept burst of each server are
    never given to the servers' connections."""
    assert reserve(1024) == RESERVE_MIN + 3 * ACCEPT_BURST
    assert reserve(65536) == 8192 + 3 * ACCEPT_BURST
    assert connection_cap(RESERVE_MIN, 1.0, 1) == 1  # nothing spare: one, never zero or less


def test_the_servers_caps_fit_the_limit_together() -> None:
    """At 1,024 the proxy (two descriptors a connection), the heartbeat endpoint and the
    dashboard fit with the reserve to spare; at a high limit the configured caps apply."""
    proxy, heartbeat = MeteringSettings().limits(), Limits(max_connections=512)
    at_1024 = (
        2 * proxy.connection_cap(1024)
        + heartbeat.connection_cap(1024)
        + DASHBOARD.connection_cap(1024)
    )
    assert at_1024 <= 1024 - reserve(1024)
    assert proxy.connection_cap(1024) >= 230
    assert DASHBOARD.connection_cap(1024) >= 100
    assert proxy.connection_cap(CEILING) == MeteringSettings().max_connections
    assert heartbeat.connection_cap(CEILING) == 512
    assert DASHBOARD.connection_cap(CEILING) == DASHBOARD.max_connections


RAISE = """
import json, resource
from fleet.connections.openfiles import raise_limit
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 2048))
after = raise_limit()
print(json.dumps([after.soft, after.hard, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


def test_raise_limit_sets_the_real_limit() -> None:
    """In a child whose limit is 256 of 2,048, the soft limit becomes 2,048."""
    done = subprocess.run(
        [sys.executable, "-c", RAISE], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [2048, 2048, 2048]
