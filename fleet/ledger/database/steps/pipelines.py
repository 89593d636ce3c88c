"""The ledger's schema steps of pipelines (33 on): each task a pipeline's stage is, and
its gate; (35) the line and the commit a gate judged."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

PIPELINES: tuple[Migration, ...] = (
    Migration(
        33,
        "the stages of pipelines: each a task of its mission, with its gate and how it went",
        (
            # One row per stage of a mission made from a pipeline (`mission new --pipeline`):
            # the stage's task, its mission, the pipeline's and the stage's names as the
            # config named them then, its place in the order the tasks were made, its gate
            # as it was configured (JSON: "auto", "approve" or {"check": [argv], "timeout":
            # s}) and how the gate went: `waiting` (the stage's work is not over),
            # `checking` (its check runs), `asking` (an operator is asked), `passed`,
            # `failed` (the mission stopped here) or `stopped` (an earlier stage's gate
            # failed: it never starts). `why` says how, redacted and bounded as it is stored.
            """CREATE TABLE pipeline_stages (
                task_id INTEGER PRIMARY KEY REFERENCES tasks(id),
                mission_id INTEGER NOT NULL REFERENCES missions(id),
                pipeline TEXT NOT NULL,
                stage TEXT NOT NULL,
                position INTEGER NOT NULL,
                gate TEXT NOT NULL,
                gate_state TEXT NOT NULL DEFAULT 'waiting',
                why TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX pipeline_stages_by_mission ON pipeline_stages(mission_id, position)",
        ),
    ),
)

GATES: tuple[Migration, ...] = (
    Migration(
        35,
        "the line and the commit a pipeline's gate judged",
        (
            # A gate is of a commit: the line (lines.id) its stage's work is on and the
            # commit its `approve` asked about or its `check:` ran on — NULL / '' until
            # the gate is taken. `merge` and `push` land that line only at a commit a
            # gate passed; a later commit withdraws the pass.
            "ALTER TABLE pipeline_stages ADD COLUMN line_id INTEGER",
            "ALTER TABLE pipeline_stages ADD COLUMN commit_sha TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX pipeline_stages_by_line ON pipeline_stages(line_id)",
        ),
    ),
)
