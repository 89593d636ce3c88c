"""The ledger's schema steps of planned spend (26 on): each run's quote, and the asks a
run or a budget at its cap puts to its operators."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

SPEND: tuple[Migration, ...] = (
    Migration(
        26,
        "quotes: what each run was expected to cost when it was admitted, and what it holds",
        (
            # One quote per run, made before it started from the agent's earlier runs on
            # the same runtime and model (`basis`: their ids, comma-separated, newest
            # first); medians and p90s in tokens and in dollars (over the priced runs:
            # NULL when none was); the run's cap when it had one; and the hold, per unit,
            # the p90 or the cap if lower (NULL: nothing to hold in that unit).
            """CREATE TABLE run_quotes (
                run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                agent TEXT NOT NULL,
                runtime TEXT NOT NULL,
                model TEXT,
                basis TEXT NOT NULL DEFAULT '',
                priced INTEGER NOT NULL DEFAULT 0,
                median_tokens REAL,
                p90_tokens REAL,
                median_usd REAL,
                p90_usd REAL,
                cap_tokens INTEGER,
                cap_usd REAL,
                hold_tokens REAL,
                hold_usd REAL,
                quoted_at REAL NOT NULL
            )""",
            "CREATE INDEX run_quotes_by_agent ON run_quotes(agent, run_id)",
        ),
    ),
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
