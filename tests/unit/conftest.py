"""Fixtures shared by the unit tests.

The ledger's own test modules (``test_ledger*.py``) run every test that takes the
``ledger`` or ``ledger_location`` fixture twice: on SQLite and on a real PostgreSQL
(``tests/postgres_server.py``). Elsewhere the ledger is SQLite's."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.engine import Database, SqliteDatabase
from fleet.ledger.database.location import LedgerLocation
from fleet.ledger.database.postgres import PostgresDatabase
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import Calls, FakeConnector


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


@pytest.fixture
def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    """Where a test's ledger goes: a SQLite file, or (parametrised so) an empty PostgreSQL
    database of its own."""
    path = tmp_path / "ledger.db"
    if getattr(request, "param", "sqlite") == "sqlite":
        return LedgerLocation(path)
    return LedgerLocation(path, str(request.getfixturevalue("postgres_dsn")))


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
