"""The ledger's first schema steps (1-8): agents, runs, audit, chat bookkeeping, metering,
budgets, operator schedules, accounts and cutoffs. See :mod:`fleet.ledger.database.steps`."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

FOUNDATION: tuple[Migration, ...] = (
    Migration(
        1,
        "core tables: agents, agent events, runs, audit, heartbeats, threads, processed events",
        (
            """CREATE TABLE agents (
                name TEXT PRIMARY KEY,
                runtime TEXT NOT NULL,
                backend TEXT NOT NULL,
                model TEXT,
                prompt TEXT,
                workdir TEXT,
                env_json TEXT NOT NULL DEFAULT '{}',
                secret_env_json TEXT NOT NULL DEFAULT '[]',
                desired_state TEXT NOT NULL CHECK (desired_state IN ('running', 'stopped')),
                state TEXT NOT NULL,
                state_reason TEXT NOT NULL DEFAULT '',
                state_changed_at REAL NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            """CREATE TABLE agent_events (
                id INTEGER PRIMARY KEY,
                agent TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
                at REAL NOT NULL,
                from_state TEXT,
                to_state TEXT NOT NULL,
                reason TEXT NOT NULL
            )""",
            "CREATE INDEX agent_events_by_agent ON agent_events(agent, id)",
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                agent TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
                backend TEXT NOT NULL,
                pid INTEGER NOT NULL,
                pgid INTEGER NOT NULL,
                start_ticks INTEGER,
                session TEXT,
                run_dir TEXT NOT NULL,
                log_path TEXT NOT NULL,
                started_at REAL NOT NULL,
                ended_at REAL,
                exit_code INTEGER,
                reason TEXT
            )""",
            "CREATE INDEX runs_by_agent ON runs(agent, id)",
            "CREATE INDEX runs_open ON runs(id) WHERE ended_at IS NULL",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                at REAL NOT NULL,
                connector TEXT NOT NULL,
                sender TEXT NOT NULL,
                room TEXT NOT NULL,
                thread TEXT,
                text TEXT NOT NULL,
                command TEXT,
                outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'denied')),
                detail TEXT
            )""",
            """CREATE TABLE heartbeats (
                agent TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
                source TEXT NOT NULL,
                at REAL NOT NULL,
                PRIMARY KEY (agent, source)
            )""",
            """CREATE TABLE threads (
                connector TEXT NOT NULL,
                room TEXT NOT NULL,
                topic TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (connector, room, topic),
                UNIQUE (connector, room, thread_id)
            )""",
            """CREATE TABLE processed_events (
                connector TEXT NOT NULL,
                event_id TEXT NOT NULL,
                at REAL NOT NULL,
                PRIMARY KEY (connector, event_id)
            )""",
        ),
    ),
    Migration(
        2,
        "connector key/value state; index processed events by time for pruning",
        (
            """CREATE TABLE connector_state (
                connector TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (connector, key)
            )""",
            "CREATE INDEX processed_events_by_at ON processed_events(at)",
        ),
    ),
    Migration(
        3,
        "roster fields (role, autostart, restart policy, timeouts, argv); restart bookkeeping",
        (
            # One JSON column for the spec fields that only the supervisor reads, so the
            # roster can grow without a migration per key.
            "ALTER TABLE agents ADD COLUMN spec_extra_json TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE agents ADD COLUMN restarts_in_a_row INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE agents ADD COLUMN last_restart_at REAL",
            "ALTER TABLE agents ADD COLUMN next_restart_at REAL",
        ),
    ),
    Migration(
        4,
        "metering: one usage row per proxied model request; provider rate-limit headers",
        (
            # The outcome values are spelled out rather than generated from the Outcome enum:
            # a shipped migration must never change. A new outcome needs a new migration.
            """CREATE TABLE usage (
                id INTEGER PRIMARY KEY,
                at REAL NOT NULL,
                agent TEXT NOT NULL,
                provider TEXT NOT NULL,
                api TEXT NOT NULL,
                requested_model TEXT,
                served_model TEXT,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                cache_read_tokens INTEGER NOT NULL DEFAULT 0,
                cache_write_tokens INTEGER NOT NULL DEFAULT 0,
                reasoning_tokens INTEGER NOT NULL DEFAULT 0,
                stream INTEGER NOT NULL CHECK (stream IN (0, 1)),
                status INTEGER NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'partial', 'upstream_error',
                    'unreachable', 'unmetered', 'refused', 'client_gone')),
                latency_ms REAL NOT NULL,
                ttfb_ms REAL,
                request_id TEXT,
                partial INTEGER NOT NULL DEFAULT 0 CHECK (partial IN (0, 1)),
                reason TEXT NOT NULL DEFAULT '',
                cost_usd REAL,
                priced INTEGER NOT NULL DEFAULT 0 CHECK (priced IN (0, 1)),
                rewritten_from TEXT
            )""",
            "CREATE INDEX usage_by_at ON usage(at)",
            "CREATE INDEX usage_by_agent ON usage(agent, at)",
            """CREATE TABLE quota_signals (
                id INTEGER PRIMARY KEY,
                at REAL NOT NULL,
                agent TEXT NOT NULL,
                provider TEXT NOT NULL,
                family TEXT NOT NULL,
                name TEXT NOT NULL,
                value TEXT NOT NULL,
                window TEXT,
                metric TEXT
            )""",
            "CREATE INDEX quota_signals_by_at ON quota_signals(at)",
            "CREATE INDEX quota_signals_by_agent ON quota_signals(agent, at)",
            # The latest value of each header per provider (pacing asks this often).
            "CREATE INDEX quota_signals_latest ON quota_signals(provider, name, at)",
        ),
    ),
    Migration(
        5,
        "budgets set by command, burst grants, and each budget's step on the pacing ladder",
        (
            # Budgets an admin set with `budget set`; each replaces the config's budget of the
            # same scope. Scopes are text (global, group:NAME, agent:NAME), not references:
            # a budget may name an agent that does not exist yet.
            """CREATE TABLE budgets (
                scope TEXT PRIMARY KEY,
                window_kind TEXT NOT NULL CHECK (window_kind IN ('rolling', 'daily', 'weekly',
                    'monthly', 'fixed')),
                window_seconds REAL CHECK (window_seconds IS NULL OR window_seconds > 0),
                reset_at REAL,
                confidence TEXT NOT NULL CHECK (confidence IN ('provider', 'user', 'estimated',
                    'unknown')),
                limit_tokens INTEGER CHECK (limit_tokens IS NULL OR limit_tokens > 0),
                limit_usd REAL CHECK (limit_usd IS NULL OR limit_usd > 0),
                account TEXT,
                ladder_json TEXT NOT NULL DEFAULT '{}',
                tolerance REAL NOT NULL DEFAULT 0.1 CHECK (tolerance BETWEEN 0 AND 1),
                set_by TEXT NOT NULL,
                set_at REAL NOT NULL,
                CHECK (limit_tokens IS NOT NULL OR limit_usd IS NOT NULL)
            )""",
            """CREATE TABLE bursts (
                id INTEGER PRIMARY KEY,
                scope TEXT NOT NULL,
                until REAL NOT NULL,
                granted_by TEXT NOT NULL,
                reason TEXT NOT NULL DEFAULT '',
                granted_at REAL NOT NULL
            )""",
            "CREATE INDEX bursts_by_until ON bursts(until)",
            # Where each budget stands on the ladder, so a restart resumes it rather than
            # starting every budget over at `none` (and posting the steps again).
            """CREATE TABLE pacing_steps (
                budget TEXT PRIMARY KEY,
                step TEXT NOT NULL CHECK (step IN ('none', 'downgrade', 'queue', 'refuse')),
                level INTEGER NOT NULL DEFAULT 0 CHECK (level >= 0),
                changed_at REAL NOT NULL
            )""",
        ),
    ),
    Migration(
        6,
        "operator schedules; audit entries say whether a command was typed or scheduled",
        (
            # AUTOINCREMENT: an id is never reused, since it names the schedule in the audit
            # trail and in the claimed event ids of its runs (schedule:<id>:<due time>).
            """CREATE TABLE schedules (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                cron TEXT NOT NULL,
                command TEXT NOT NULL,
                created_by TEXT NOT NULL,
                connector TEXT NOT NULL,
                room TEXT NOT NULL,
                created_at REAL NOT NULL,
                last_run_at REAL,
                last_outcome TEXT CHECK (last_outcome IN ('ok', 'error', 'denied')),
                last_detail TEXT
            )""",
            # 'typed' (by the sender, or written in an agent's thread) or 'schedule:<id>'.
            "ALTER TABLE audit ADD COLUMN source TEXT NOT NULL DEFAULT 'typed'",
        ),
    ),
    Migration(
        7,
        "accounts: which account each agent is on, accounts found unusable, quota windows",
        (
            # The account whose credential the proxy injected (NULL: none, or before 7).
            "ALTER TABLE usage ADD COLUMN account TEXT",
            "CREATE INDEX usage_by_account ON usage(account, at)",
            # The account a run of an agent uses per provider; a pool may move it mid-run.
            """CREATE TABLE account_assignments (
                agent TEXT NOT NULL,
                provider TEXT NOT NULL,
                account TEXT NOT NULL,
                at REAL NOT NULL,
                runtime TEXT NOT NULL DEFAULT '',
                wanted TEXT,
                PRIMARY KEY (agent, provider)
            )""",
            # Why an account cannot be used, until when (NULL: until fixed).
            """CREATE TABLE account_marks (
                account TEXT PRIMARY KEY,
                health TEXT NOT NULL CHECK (health IN ('ok', 'rejected', 'unauthorized',
                    'missing')),
                reason TEXT NOT NULL,
                until REAL,
                at REAL NOT NULL
            )""",
            # The latest word of each provider window per account, normalised.
            """CREATE TABLE quota_windows (
                account TEXT NOT NULL,
                window TEXT NOT NULL,
                used REAL NOT NULL CHECK (used BETWEEN 0 AND 1),
                resets_at REAL,
                status TEXT NOT NULL,
                observed_at REAL NOT NULL,
                source TEXT NOT NULL,
                length_seconds REAL,
                PRIMARY KEY (account, window)
            )""",
        ),
    ),
    Migration(
        8,
        "cutoffs: what a budget set by command does when it runs out; agents frozen by one",
        (
            "ALTER TABLE budgets ADD COLUMN cutoff TEXT NOT NULL DEFAULT 'refuse'",
            """CREATE TABLE freezes (
                agent TEXT PRIMARY KEY,
                budget TEXT NOT NULL,
                reason TEXT NOT NULL,
                frozen_at REAL NOT NULL,
                host TEXT NOT NULL
            )""",
        ),
    ),
)
