"""The ledger's schema steps of the work register (28 on): tasks — what each piece of work
is for, where it came from, its state, its runs, its projection kept when it was made and,
once it ended, what it really cost — grouped into missions, a task waiting on others."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

WORK: tuple[Migration, ...] = (
    Migration(
        28,
        "tasks and missions: the work register, with each task's projected and actual spend",
        (
            # A mission groups tasks and sub-missions (`parent`); `name` is what operators
            # type. AUTOINCREMENT: an id is never reused, since chat and documents name it.
            """CREATE TABLE missions (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE,
                title TEXT NOT NULL DEFAULT '',
                parent INTEGER REFERENCES missions(id),
                created_by TEXT NOT NULL,
                created_at REAL NOT NULL
            )""",
            # One row per task. `source`: where it came from (chat, forge, schedule, task,
            # autostart) and `source_ref` what there (an issue's URL, a schedule's id, the
            # task that made it). The projection (`projected_*`) is written once, when the
            # task is made, from the finished tasks of the kind named by `basis` (their ids
            # in `basis_tasks`, newest first); NULL medians: no history in that unit.
            # `asked_in`: where its start was asked for in chat (JSON: connector, room,
            # thread, sender), so a task that waited for others starts there as its asker.
            # `actual_*` and `error` are written when it ends (actual / projected median),
            # so later projections can say how far they were off; while it is open its
            # actual is read from its runs' metered usage.
            """CREATE TABLE tasks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE,
                title TEXT NOT NULL,
                body TEXT NOT NULL DEFAULT '',
                source TEXT NOT NULL
                    CHECK (source IN ('chat', 'forge', 'schedule', 'task', 'autostart')),
                source_ref TEXT NOT NULL DEFAULT '',
                mission_id INTEGER REFERENCES missions(id),
                agent TEXT,
                runtime TEXT,
                repo TEXT,
                state TEXT NOT NULL CHECK (state IN
                    ('todo', 'queued', 'working', 'review', 'done', 'failed', 'cancelled')),
                why TEXT NOT NULL DEFAULT '',
                asked_by TEXT NOT NULL,
                asked_in TEXT,
                forge_run INTEGER,
                branch TEXT,
                pull_url TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                started_at REAL,
                ended_at REAL,
                basis TEXT NOT NULL DEFAULT '',
                basis_tasks TEXT NOT NULL DEFAULT '',
                projected_median_tokens REAL,
                projected_p90_tokens REAL,
                projected_median_usd REAL,
                projected_p90_usd REAL,
                actual_tokens INTEGER,
                actual_usd REAL,
                error REAL,
                error_unit TEXT CHECK (error_unit IN ('usd', 'tokens'))
            )""",
            "CREATE INDEX tasks_by_state ON tasks(state, id)",
            "CREATE INDEX tasks_by_mission ON tasks(mission_id, id)",
            "CREATE INDEX tasks_by_agent ON tasks(agent, id)",
            "CREATE INDEX tasks_by_forge_run ON tasks(forge_run)",
            # The runs a task's work was done in; a run belongs to one task.
            """CREATE TABLE task_runs (
                run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE
            )""",
            "CREATE INDEX task_runs_by_task ON task_runs(task_id, run_id)",
            # A task that waits for others (`task new … --after T`) to be done first.
            """CREATE TABLE task_waits (
                task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                after_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                PRIMARY KEY (task_id, after_id)
            )""",
            "CREATE INDEX task_waits_by_after ON task_waits(after_id)",
        ),
    ),
)
