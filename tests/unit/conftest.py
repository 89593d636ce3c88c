"""Fixtures shared by the unit tests.

The ledger's own test modules (``test_ledger*.py``) run every test that takes the
``ledger`` or ``ledger_location`` fixture twice: on SQLite and on a real PostgreSQL
(``tests/postgres_server.py``). Elsewhere the ledger is SQLite's.

On PostgreSQL, a test that takes ``ledger`` gets a database copied from one the ledger's
migrations took from empty once a session (:func:`migrated_template`): the copy is what
those migrations leave, without each test running them again. A test that takes only
``ledger_location`` gets an empty database, as a fresh install does."""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.engine import Database, SqliteDatabase
from fleet.ledger.database.location import LedgerLocation
from fleet.ledger.database.postgres import PostgresDatabase
from fleet.timing.clock import ManualClock
from tests.postgres_server import PostgresServer
from tests.unit.chat_fakes import T0, Calls, FakeConnector


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    """Undo setup_logging: put back the root logger's handlers and level, close ours."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in ("aiosqlite", "asyncio")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in saved_handlers:
            handler.close()
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)
    for name, level in noisy.items():
        logging.getLogger(name).setLevel(level)


ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if module.startswith("test_ledger") and "ledger_location" in metafunc.fixturenames:
        metafunc.parametrize("ledger_location", ENGINES, indirect=True)


@pytest.fixture(scope="session")
def migrated_template(postgres_server: PostgresServer) -> Iterator[str]:
    """The name of a database the ledger's migrations took from empty, made once a session
    (per xdist worker) on the session server: what each PostgreSQL ``ledger`` is copied
    from. Nobody stays connected to it (a template must have no one on it)."""
    name = f"fw_ledger_{secrets.token_hex(6)}"
    postgres_server.create_database(name)

    async def migrate(where: Path) -> None:
        opened = await Ledger.connect(
            LedgerLocation(where, postgres_server.dsn(name)), ManualClock(T0)
        )
        await opened.close()

    try:
        with tempfile.TemporaryDirectory(prefix="fw-ledger-template-") as scratch:
            asyncio.run(migrate(Path(scratch) / "ledger.db"))
        yield name
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    """Where a test's ledger goes: a SQLite file, or (parametrised so) a PostgreSQL database
    of its own — empty, or a copy of :func:`migrated_template` when the test takes
    ``ledger``."""
    path = tmp_path / "ledger.db"
    if getattr(request, "param", "sqlite") == "sqlite":
        return LedgerLocation(path)
    if "ledger" not in request.fixturenames:
        return LedgerLocation(path, str(request.getfixturevalue("postgres_dsn")))
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("migrated_template")
    name = f"fw_test_{secrets.token_hex(6)}"
    server.create_database(name, template=template)
    request.addfinalizer(lambda: server.drop_database(name))
    return LedgerLocation(path, server.dsn(name))


@pytest.fixture
async def ledger(ledger_location: LedgerLocation, clock: ManualClock) -> AsyncIterator[Ledger]:
    opened = await Ledger.connect(ledger_location, clock)
    yield opened
    await opened.close()


async def raw_database(location: LedgerLocation) -> Database:
    """A bare connection to ``location``'s database, for a test that builds an old schema."""
    if location.url is None:
        return await SqliteDatabase.connect(location.path)
    return await PostgresDatabase.connect(location.url)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def chat() -> FakeConnector:
    return FakeConnector()
