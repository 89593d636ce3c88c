"""The ledger's schema steps of confirmations (34 on): what a command decided when it
asked, kept with its question."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

CONFIRMING: tuple[Migration, ...] = (
    Migration(
        34,
        "a confirmation's plan: what its command decided when it asked, as data",
        (
            # JSON of the asking command's own choosing (`restart all`: the agents it would
            # restart and those it leaves alone, frozen), given back to it on the `yes` so
            # it acts on what it asked, never on the question's words read back. NULL: the
            # command keeps none (and rows asked before this step).
            "ALTER TABLE confirmations ADD COLUMN plan TEXT",
        ),
    ),
)
