"""The ledger's schema and how it evolves: numbered migrations and the code that applies them.

Each migration runs in its own write transaction (exclusive across processes: two
orchestrators starting at once migrate once) together with the bump of the
single-row ``schema_version`` table, so a failed migration leaves no trace and a half-upgraded
ledger cannot exist. The steps themselves are in :mod:`fleet.ledger.database.steps`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fleet.errors import LedgerError
from fleet.ledger.database.engine import Database, DatabaseError
from fleet.ledger.database.steps import MIGRATIONS, Migration

log = logging.getLogger(__name__)

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "migrate", "schema_version"]

LATEST_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
)


async def schema_version(conn: Database) -> int:
    """The version recorded in ``schema_version``; 0 when the table is absent or empty."""
    if "schema_version" not in await conn.table_names():
        return 0
    rows = await conn.execute_fetchall("SELECT version FROM schema_version WHERE id = 1")
    found = list(rows)
    return int(found[0][0]) if found else 0


async def migrate(conn: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply the migrations ``conn`` has not seen yet, each in its own transaction.

    Returns the final schema version. Raises :class:`LedgerError` if the database is newer
    than ``migrations`` know, is some other application's database, or a migration fails.
    ``conn`` must be outside a transaction.
    """
    _check_sequence(migrations)
    if conn.in_transaction:
        raise LedgerError("cannot migrate inside an open transaction")
    latest = migrations[-1].version if migrations else 0
    current = await schema_version(conn)
    if current == 0:
        await _claim_empty_database(conn)
    if current > latest:
        raise LedgerError(
            f"schema version {current} but this Fleetwarden knows up to {latest}; "
            "upgrade Fleetwarden"
        )
    for migration in migrations:
        if migration.version > current:
            current = await _apply(conn, migration)
    return current


async def _claim_empty_database(conn: Database) -> None:
    """Create ``schema_version`` in a database that has no tables, or refuse a foreign one."""
    async with _transaction(conn, "could not create the schema version table"):
        foreign = [name for name in await conn.table_names() if name != "schema_version"]
        if foreign:
            raise LedgerError(
                f"has tables ({', '.join(foreign[:5])}) but no schema version; "
                "it is not a Fleetwarden ledger"
            )
        await conn.execute(_VERSION_TABLE)
        await conn.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING"
        )
        await conn.commit()


async def _apply(conn: Database, migration: Migration) -> int:
    """Run one migration and its version bump atomically; return the version now recorded."""
    version, description, statements = migration
    async with _transaction(conn, f"migration {version} ({description}) failed"):
        # Another process may have migrated between our read and our lock.
        found = await schema_version(conn)
        if found >= version:
            await conn.commit()
            return found
        for statement in statements:
            await conn.execute(statement)
        await conn.execute("UPDATE schema_version SET version = ? WHERE id = 1", (version,))
        await conn.commit()
    log.info("ledger migrated to schema version %d: %s", version, description)
    return version


@contextlib.asynccontextmanager
async def _transaction(conn: Database, failed: str) -> AsyncIterator[None]:
    """A transaction on ``conn``, begun here and committed by the block; rolled back when
    anything in it raises, a database's failure raised as :class:`LedgerError` saying
    ``failed``."""
    try:
        await conn.begin()
        yield
    except DatabaseError as exc:
        await _rollback(conn)
        raise LedgerError(f"{failed}: {exc}") from exc
    except BaseException:
        await _rollback(conn)
        raise


async def _rollback(conn: Database) -> None:
    # Some errors (disk full, I/O) make SQLite roll back by itself.
    if conn.in_transaction:
        await conn.rollback()


def _check_sequence(migrations: tuple[Migration, ...]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order; got {versions}")
