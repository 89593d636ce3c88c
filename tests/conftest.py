"""Shared fixtures: a real Synapse homeserver on 127.0.0.1 (see tests/synapse_server.py) and a
clock that stands still until a test moves it."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from fleet.timing.clock import ManualClock
from tests import cpu_by_test, popen_owners, sandbox_need
from tests.fakes.agents.hostile_git import leftovers
from tests.postgres_server import postgres_dsn, postgres_server, private_postgres
from tests.sshd_server import private_ssh_host, session_ssh_hosts, ssh_hosts
from tests.synapse_server import PYTHON_ENV_VAR, SynapseServer, synapse_python
from tests.unit.chat_fakes import T0

SKIP_SYNAPSE_ENV_VAR = "FLEETWARDEN_SKIP_SYNAPSE"

# A process dropped still running names the test that started it (tests/popen_owners.py).
popen_owners.install()

# Property tests judge what the code answers, never how fast: on a loaded machine (the
# suite on 2 cores) drawing their examples may be slow, which is no failure of the code.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# A real PostgreSQL (tests/postgres_server.py): one per session, a database per test; real
# OpenSSH servers on 127.0.0.2-4 (tests/sshd_server.py).
__all__ = [
    "postgres_dsn",
    "postgres_server",
    "private_postgres",
    "private_ssh_host",
    "session_ssh_hosts",
    "ssh_hosts",
]


def pytest_configure(config: pytest.Config) -> None:
    """The suite's own plugins: which test started a process dropped still running, and
    (``FLEETWARDEN_TEST_CPU=DIR``) the CPU each test spent (tests/cpu_by_test.py)."""
    config.pluginmanager.register(popen_owners, "fleetwarden-popen-owners")
    config.pluginmanager.register(cpu_by_test, "fleetwarden-cpu-by-test")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the files that need the session's Synapse in two bundles, so
    two Synapses start rather than one per worker (tests/scheduling.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.scheduling import SynapseBundles

    return SynapseBundles(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection loaded (the product's and the tests' modules, ~8,900 test items) is
    kept out of the garbage collector's passes for good, as the ``fleetwarden`` command
    keeps what it loads (``bot.cli.command.loaded``), and young objects are collected ten
    times less often: each pass walked all of it, ~14% of a worker's CPU (``perf``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 10, 10)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked as needing a missing sandbox part skips, or fails when it is required."""
    sandbox_need.check(item)


def _new_synapse(root: Path) -> SynapseServer:
    """A configured, not yet started server; skips or fails as the environment asks."""
    if os.environ.get(SKIP_SYNAPSE_ENV_VAR) == "1":
        pytest.skip(f"{SKIP_SYNAPSE_ENV_VAR}=1: tests that need a real Synapse are skipped")
    python = synapse_python()
    if not python.exists():
        pytest.fail(
            f"the Synapse venv is missing (no {python}): run `bash tests/run.sh` to create "
            f".venv-synapse, set {PYTHON_ENV_VAR} to a Python with matrix-synapse installed, "
            f"or set {SKIP_SYNAPSE_ENV_VAR}=1 to skip these tests",
            pytrace=False,
        )
    return SynapseServer(root, python=python)


@pytest.fixture
def clock() -> ManualClock:
    """A clock standing at :data:`tests.unit.chat_fakes.T0` until a test moves it."""
    return ManualClock(T0)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """One Synapse shared by the whole session: register fresh users per test, never stop it."""
    server = _new_synapse(tmp_path_factory.mktemp("synapse"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_synapse(tmp_path: Path) -> Iterator[SynapseServer]:
    """A Synapse of this test's own, free to be stopped and restarted."""
    server = _new_synapse(tmp_path / "synapse")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tag() -> Iterator[str]:
    """A word in the command line of whatever the planted programs leave running; those
    processes are killed afterwards, pass or fail."""
    word = f"fw-git-leftover-{uuid.uuid4().hex[:12]}"
    yield word
    for pid in leftovers(word):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
