"""The ledger's schema steps of agents working together (29 on): every message one agent
sends another (or was refused sending), with its receipt, and every review one agent asks
of another on a task's line, with its verdict."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

PEERS: tuple[Migration, ...] = (
    Migration(
        29,
        "messages between agents with their receipts, and reviews by a second agent",
        (
            # One row per message an agent sent (`fw-msg send`), handed on as a task
            # (`fw-msg task`) or answered in a review (`fw-msg review`), refused ones too:
            # this is their audit. `text` is kept redacted. `state`: `queued` until it is in
            # the receiver's session (`delivered`, its `delivered_run`), or `refused` with
            # `why` (never sent, or dropped before it could be). `sender_run`: the run that
            # sent it; `task_id`: the task handed on, or the task under review.
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                sender TEXT NOT NULL,
                receiver TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('message', 'task', 'review')),
                text TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'refused')),
                why TEXT NOT NULL DEFAULT '',
                sender_run INTEGER,
                task_id INTEGER,
                sent_at REAL NOT NULL,
                delivered_at REAL,
                delivered_run INTEGER
            )""",
            "CREATE INDEX messages_by_receiver ON messages(receiver, state, id)",
            "CREATE INDEX messages_by_sender ON messages(sender, sent_at)",
            # One row per round of review: `reviewer` was asked to review `coder`'s work on
            # task `task_id` (its line `branch` of `repo` at `commit_sha`; a forge run's
            # `forge_run`), round `round` of at most `rounds`. `state`: `asked` until its
            # verdict (`approved`, `changes`) or `ended` (its run ended with none, or the
            # task did); `verdict` is the reviewer's words, redacted; `run_id` its run.
            """CREATE TABLE reviews (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                coder TEXT NOT NULL,
                reviewer TEXT NOT NULL,
                round INTEGER NOT NULL,
                rounds INTEGER NOT NULL,
                repo TEXT NOT NULL DEFAULT '',
                branch TEXT NOT NULL DEFAULT '',
                commit_sha TEXT NOT NULL DEFAULT '',
                forge_run INTEGER,
                run_id INTEGER,
                state TEXT NOT NULL CHECK (state IN ('asked', 'approved', 'changes', 'ended')),
                verdict TEXT NOT NULL DEFAULT '',
                asked_at REAL NOT NULL,
                answered_at REAL
            )""",
            "CREATE INDEX reviews_by_task ON reviews(task_id, id)",
            "CREATE INDEX reviews_by_reviewer ON reviews(reviewer, state, id)",
        ),
    ),
)
