"""The ledger's schema steps of the forge era (22 on): issues given to agents as forge
runs, the webhook deliveries taken (and, from 23, kept until acted on), every forge
operation audited, (24) egress refusals counted by when, for a forge run's footer, and
(25) the spawn queue holding each launch's request itself, with where it came from."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

FORGES: tuple[Migration, ...] = (
    Migration(
        22,
        "work from the forge: forge runs, webhook deliveries taken, forge operations audited",
        (
            # A delivery id seen once: a redelivery (or the same polled event) never starts
            # a second run. `outcome` says what came of it (started, ignored and why, …).
            """CREATE TABLE forge_deliveries (
                forge TEXT NOT NULL,
                delivery TEXT NOT NULL,
                event TEXT NOT NULL,
                received_at REAL NOT NULL,
                outcome TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (forge, delivery)
            )""",
            # An issue given to an agent: its branch, pull request, the one status comment
            # kept on the issue (and GitHub's check run), the run working on it now.
            """CREATE TABLE forge_runs (
                id INTEGER PRIMARY KEY,
                forge TEXT NOT NULL,
                repo TEXT NOT NULL,
                slug TEXT NOT NULL,
                issue INTEGER NOT NULL,
                title TEXT NOT NULL DEFAULT '',
                agent TEXT NOT NULL,
                branch TEXT NOT NULL,
                state TEXT NOT NULL,
                requester TEXT NOT NULL,
                pull INTEGER,
                pull_url TEXT,
                issue_url TEXT NOT NULL DEFAULT '',
                comment_id INTEGER,
                check_id INTEGER,
                run_id INTEGER,
                line_id INTEGER,
                done_signal TEXT,
                done_status TEXT,
                summary TEXT,
                started_at REAL NOT NULL,
                activity_at REAL,
                ended_at REAL
            )""",
            # One live forge run per issue.
            "CREATE UNIQUE INDEX forge_runs_live ON forge_runs(forge, slug, issue)"
            " WHERE ended_at IS NULL",
            "CREATE INDEX forge_runs_by_agent ON forge_runs(agent, ended_at)",
            # Every forge operation, allowed or refused, in words ("read PR #18 …").
            """CREATE TABLE forge_audit (
                id INTEGER PRIMARY KEY,
                forge_run INTEGER,
                agent TEXT NOT NULL,
                at REAL NOT NULL,
                op TEXT NOT NULL,
                allowed INTEGER NOT NULL,
                detail TEXT NOT NULL
            )""",
            "CREATE INDEX forge_audit_by_run ON forge_audit(forge_run, id)",
            # Where the poller got to, per forge and repository.
            """CREATE TABLE forge_cursors (
                forge TEXT NOT NULL,
                slug TEXT NOT NULL,
                cursor TEXT NOT NULL,
                PRIMARY KEY (forge, slug)
            )""",
        ),
    ),
    Migration(
        23,
        "forge deliveries kept until acted on",
        (
            # The event a delivery carries, kept with it until its outcome is written: one
            # taken but not acted on when Fleetwarden stopped is acted on at the next start.
            "ALTER TABLE forge_deliveries ADD COLUMN kept TEXT NOT NULL DEFAULT ''",
        ),
    ),
    Migration(
        24,
        "egress refusals counted by when, so a forge run's footer counts its own span only",
        (
            # ``egress_refusals`` keeps one counted row per destination since the agent
            # began; this keeps how many were refused in each second (as counted), per agent.
            """CREATE TABLE egress_refusal_times (
                agent TEXT NOT NULL,
                at REAL NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (agent, at)
            )""",
        ),
    ),
    Migration(
        25,
        "the spawn queue holds each launch's request, where it came from and what it is there",
        (
            # The launch request as JSON (fleet.supervisor.admission.held); NULL: an entry
            # written before, read as the chat request its command's flags describe.
            "ALTER TABLE spawn_queue ADD COLUMN launch_json TEXT",
            # Where the launch came from (chat, autostart, forge); NULL: an entry written
            # before (chat when it names a connector, else autostart).
            "ALTER TABLE spawn_queue ADD COLUMN origin TEXT",
            # What its origin knows it by (a forge run's id); NULL for chat and autostart.
            "ALTER TABLE spawn_queue ADD COLUMN ref TEXT",
        ),
    ),
)
