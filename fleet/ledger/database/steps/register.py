"""The ledger's schema steps of the register's texts (30 on): whether a task's and a
mission's words were redacted as they were stored, and (31 on) for which secrets."""

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
    Migration(
        31,
        "the mark on the register's rows names the secrets they were redacted for",
        (
            # `redacted_for`: the names (never the values) of the variables the config
            # named as secrets when the row's words were redacted and marked (a JSON list,
            # sorted; '' for a row marked before this step: no name known). A row is
            # redacted for a secret only if its name is here: a secret the config names
            # later (a reload, a restart) redacts it again, and an export without that
            # secret's value withholds its words until it does.
            "ALTER TABLE tasks ADD COLUMN redacted_for TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE missions ADD COLUMN redacted_for TEXT NOT NULL DEFAULT ''",
        ),
    ),
)
