"""The ledger's schema steps of the register's texts (30 on): whether a task's and a
mission's words were redacted as they were stored."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

REGISTER: tuple[Migration, ...] = (
    Migration(
        30,
        "the register's texts redacted as they are stored, and a mark on each row saying so",
        (
            # `redacted`: 1 when every text of the row a person, an agent or an issue wrote
            # (a task's title, body, why, source_ref and asked_by; a mission's title)
            # passed the running Fleetwarden's redactor as it was written: the one that
            # knows every secret the fleet holds. 0 for a row stored before, or written
            # without it: an export that cannot redact it with every secret the config
            # names withholds its words (`fleetwarden tasks`).
            "ALTER TABLE tasks ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE missions ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0",
        ),
    ),
)
