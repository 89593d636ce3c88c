"""The ledger's schema steps of planned spend (26 on): each run's quote, and the asks a
run or a budget at its cap puts to its operators."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

# 26 is the quotes' (``run_quotes``), built beside this one.
SPEND: tuple[Migration, ...] = (
    Migration(
        27,
        "spend asks: a run at its cap asks its operators to raise it or stop it",
        (
            # One row per ask (its approval request, channel 'spend'): what Fleetwarden
            # offered and falls back to, read from here, never from the request's words.
            """CREATE TABLE spend_asks (
                approval_id TEXT PRIMARY KEY REFERENCES approvals(id),
                agent TEXT NOT NULL,
                run_id INTEGER NOT NULL,
                unit TEXT NOT NULL CHECK (unit IN ('usd', 'tokens')),
                cap REAL NOT NULL,
                offer REAL NOT NULL,
                fallback TEXT NOT NULL CHECK (fallback IN ('stop', 'freeze')),
                asked_at REAL NOT NULL,
                outcome TEXT CHECK (outcome IN ('raised', 'stopped', 'frozen', 'closed')),
                amount REAL,
                settled_by TEXT,
                settled_at REAL
            )""",
            "CREATE INDEX spend_asks_by_agent ON spend_asks(agent, asked_at)",
        ),
    ),
)
