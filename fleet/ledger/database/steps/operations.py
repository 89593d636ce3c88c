"""The ledger's later schema steps (9 on): the spawn queue, roster membership, run reports,
chat answers, egress refusals, emergency levers, approvals, run costs and several hosts. See
:mod:`fleet.ledger.database.steps`."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

OPERATIONS: tuple[Migration, ...] = (
    Migration(
        9,
        "the spawn queue: launches waiting for a free slot or for their budget's queue",
        (
            # AUTOINCREMENT: an id names the entry in `queue`, `cancel` and the claimed event
            # id of its start (queue:<id>), so it is never reused.
            """CREATE TABLE spawn_queue (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                agent TEXT NOT NULL,
                request_json TEXT NOT NULL DEFAULT '{}',
                command TEXT NOT NULL,
                sender TEXT NOT NULL,
                connector TEXT NOT NULL,
                room TEXT NOT NULL,
                thread TEXT,
                reason TEXT NOT NULL,
                queued_at REAL NOT NULL,
                not_before REAL,
                host TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'starting'))
            )""",
            "CREATE INDEX spawn_queue_by_host ON spawn_queue(host, id)",
        ),
    ),
    Migration(
        10,
        "roster membership: where an agent's settings came from, its removal, forgetting it",
        (
            # 'roster' (the config defines it) or 'spawn' (an operator's ad hoc agent). Agents
            # from before 10 count as ad hoc until a start finds them in the roster.
            "ALTER TABLE agents ADD COLUMN origin TEXT NOT NULL DEFAULT 'spawn'"
            " CHECK (origin IN ('roster', 'spawn'))",
            # When a reload (or a start) found a roster agent gone from the config; NULL while
            # it is in the roster. The watchdog restarts no removed agent.
            "ALTER TABLE agents ADD COLUMN removed_at REAL",
            # When `forget` took it out of `ps`. The row stays: its runs reference it, and they
            # stay for reports. A later spawn clears it.
            "ALTER TABLE agents ADD COLUMN forgotten_at REAL",
        ),
    ),
    Migration(
        11,
        "run reports: where each run worked, why it started and how it went, for summaries",
        (
            """CREATE TABLE run_reports (
                run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                agent TEXT NOT NULL,
                host TEXT NOT NULL,
                trigger TEXT NOT NULL,
                accounts TEXT NOT NULL DEFAULT '',
                workdir TEXT,
                git_before TEXT,
                git_after TEXT,
                log_offset INTEGER NOT NULL,
                outcome TEXT,
                why TEXT,
                turns INTEGER,
                cli_duration_ms INTEGER,
                cli_cost_usd REAL,
                last_message TEXT,
                tool_calls INTEGER NOT NULL DEFAULT 0,
                unreadable_lines INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX run_reports_by_agent ON run_reports(agent, run_id)",
        ),
    ),
    Migration(
        12,
        "chat answers: what the bot did with each chat message, so an edit knows if it applies",
        (
            """CREATE TABLE chat_answers (
                connector TEXT NOT NULL, event_id TEXT NOT NULL, sender TEXT NOT NULL,
                room TEXT NOT NULL, thread TEXT, command TEXT, outcome TEXT, at REAL NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'ignored', 'refused', 'ran')),
                PRIMARY KEY (connector, event_id)
            )""",
            "CREATE INDEX chat_answers_by_at ON chat_answers(at)",
        ),
    ),
    Migration(
        13,
        "egress refusals: what each agent was refused (forward proxy, unknown endpoints), counted",
        (
            # One row per agent, source, destination and reason, counted: a refused agent
            # retrying does not grow the ledger. The agent's name stays plain text, as for
            # metering rows: refusals outlive a forgotten agent.
            """CREATE TABLE egress_refusals (
                agent TEXT NOT NULL,
                source TEXT NOT NULL CHECK (source IN ('egress', 'proxy')),
                target TEXT NOT NULL,
                why TEXT NOT NULL,
                count INTEGER NOT NULL,
                first_at REAL NOT NULL,
                last_at REAL NOT NULL,
                PRIMARY KEY (agent, source, target, why)
            )""",
        ),
    ),
    Migration(
        14,
        "emergency levers: who froze an agent by hand, and confirmations waiting for a reply",
        (
            # The person whose `freeze` paused the agent; NULL for a budget's cutoff. A budget
            # never lifts a freeze it did not make, nor takes one over.
            "ALTER TABLE freezes ADD COLUMN frozen_by TEXT",
            # `freeze all` and `stop all` wait here for their asker's `yes`, in the place they
            # were asked; an expired row never acts, and is kept a while only to say so.
            """CREATE TABLE confirmations (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                connector TEXT NOT NULL,
                sender TEXT NOT NULL,
                room TEXT NOT NULL,
                thread TEXT,
                command TEXT NOT NULL,
                summary TEXT NOT NULL,
                asked_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                host TEXT NOT NULL
            )""",
            "CREATE INDEX confirmations_by_place ON confirmations(connector, room, thread)",
        ),
    ),
    Migration(
        15,
        "approvals: agents' asks for a yes or no, their answers, where they were shown",
        (
            # One row per ask of a run; (run_id, channel, native_id) is the CLI's own id of
            # it, so reading a run's output again never asks twice. The agent's name stays
            # plain text: the audit of an answer outlives a forgotten agent.
            """CREATE TABLE approvals (
                id TEXT PRIMARY KEY,
                agent TEXT NOT NULL,
                run_id INTEGER NOT NULL,
                channel TEXT NOT NULL,
                native_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('permission', 'question')),
                tool TEXT NOT NULL,
                subject TEXT NOT NULL,
                detail TEXT NOT NULL,
                pattern TEXT,
                state TEXT NOT NULL CHECK (
                    state IN ('open', 'allowed', 'denied', 'timed_out', 'closed')),
                asked_at REAL NOT NULL,
                deadline REAL NOT NULL,
                starter TEXT,
                host TEXT NOT NULL,
                answered_by TEXT,
                answered_at REAL,
                how TEXT,
                reason TEXT,
                decision TEXT CHECK (decision IN ('allow', 'deny', 'always')),
                delivered_at REAL,
                UNIQUE (run_id, channel, native_id)
            )""",
            "CREATE INDEX approvals_open ON approvals(state, agent, asked_at)",
            """CREATE TABLE approval_posts (
                request_id TEXT NOT NULL REFERENCES approvals(id),
                connector TEXT NOT NULL,
                room TEXT NOT NULL,
                thread TEXT,
                event_id TEXT NOT NULL,
                PRIMARY KEY (connector, event_id)
            )""",
            "CREATE INDEX approval_posts_by_request ON approval_posts(request_id)",
            # What an `always` answer taught an agent: asks matching it pass without asking.
            """CREATE TABLE approval_rules (
                agent TEXT NOT NULL,
                pattern TEXT NOT NULL,
                added_by TEXT NOT NULL,
                added_at REAL NOT NULL,
                PRIMARY KEY (agent, pattern)
            )""",
        ),
    ),
    Migration(
        16,
        "the runtime and model of each run, for what a run of an agent usually costs",
        (
            "ALTER TABLE run_reports ADD COLUMN runtime TEXT",
            "ALTER TABLE run_reports ADD COLUMN model TEXT",
        ),
    ),
    Migration(
        17,
        "several hosts: the host of every agent, run, usage row and audit entry; leases",
        (
            # Where the agent runs: `local`, or a name from the config's `hosts`.
            "ALTER TABLE agents ADD COLUMN host TEXT NOT NULL DEFAULT 'local'",
            "ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT 'local'",
            # The host of the agent that made the request.
            "ALTER TABLE usage ADD COLUMN host TEXT NOT NULL DEFAULT 'local'",
            "CREATE INDEX usage_by_host ON usage(host, at)",
            # The orchestrator that took the command (an active one or its standby).
            "ALTER TABLE audit ADD COLUMN host TEXT NOT NULL DEFAULT ''",
            # Who may act: one row per lease (`orchestrator`), its holder until `expires_at`
            # unless renewed. `epoch` grows at every change of holder: a holder that finds
            # another epoch has lost the lease, whatever its clock says.
            """CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                epoch INTEGER NOT NULL CHECK (epoch > 0),
                acquired_at REAL NOT NULL,
                renewed_at REAL NOT NULL,
                expires_at REAL NOT NULL
            )""",
        ),
    ),
    Migration(
        18,
        "agents' tokens known to every orchestrator of the ledger, as digests",
        (
            # The SHA-256 of each token an agent was given (`heartbeat`, `metering`), so a
            # standby that takes over knows the agents' tokens without holding them.
            """CREATE TABLE agent_token_digests (
                agent TEXT NOT NULL,
                purpose TEXT NOT NULL,
                digest TEXT NOT NULL,
                PRIMARY KEY (agent, purpose)
            )""",
        ),
    ),
    Migration(
        19,
        "the web dashboard's one-time sign-in links and sessions, as digests",
        (
            # A link the `dashboard` command sent: the SHA-256 of its secret, whom it signs
            # in (with their role and groups then), and when it was used (once).
            """CREATE TABLE dashboard_links (
                digest TEXT PRIMARY KEY,
                connector TEXT NOT NULL,
                user_id TEXT NOT NULL,
                role TEXT NOT NULL,
                groups TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                used_at REAL
            )""",
            # A browser's session: the SHA-256 of its cookie, bound to the person and the
            # role they had when they signed in; `ended_at` once revoked.
            """CREATE TABLE dashboard_sessions (
                digest TEXT PRIMARY KEY,
                connector TEXT NOT NULL,
                user_id TEXT NOT NULL,
                role TEXT NOT NULL,
                groups TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                ended_at REAL
            )""",
            "CREATE INDEX dashboard_sessions_by_user ON dashboard_sessions(connector, user_id)",
        ),
    ),
    Migration(
        20,
        "approvals bound to what they showed: the digest of each ask, the CLI's id apart",
        (
            # The SHA-256 of what the ask showed (kind, tool, subject, detail, pattern): an
            # answer binds to it. The CLI's own id of the ask moves to `cli_id`; `native_id`
            # becomes the row's key, `cli_id#digest`, so the same CLI id asking something
            # else is a request of its own, never the answered one again.
            "ALTER TABLE approvals ADD COLUMN digest TEXT",
            "ALTER TABLE approvals ADD COLUMN cli_id TEXT",
            "UPDATE approvals SET cli_id = native_id",
            "CREATE INDEX approvals_by_cli_id ON approvals(run_id, channel, cli_id)",
        ),
    ),
    Migration(
        21,
        "agents on repositories: each run's branch and checkout, and the change a run left",
        (
            # A line: one branch of one repository with its checkout, cut by run `line` of
            # `agent` from `base_ref` at `fork_sha`; `state` live, merged or discarded.
            """CREATE TABLE branches (
                id INTEGER PRIMARY KEY,
                repo TEXT NOT NULL,
                agent TEXT NOT NULL,
                branch TEXT NOT NULL,
                base_ref TEXT NOT NULL,
                fork_sha TEXT NOT NULL,
                checkout TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'live',
                created_at REAL NOT NULL,
                first_run INTEGER,
                last_run INTEGER,
                head_sha TEXT,
                pushed_sha TEXT,
                merged_sha TEXT,
                copied TEXT NOT NULL DEFAULT '',
                co_author TEXT,
                ended_at REAL,
                host TEXT NOT NULL DEFAULT 'local',
                UNIQUE (repo, branch)
            )""",
            "CREATE INDEX branches_by_agent ON branches(agent, state)",
            # What the git door refused is counted beside the egress refusals, as `git`: the
            # table is made again, its old rows kept, for the CHECK to take the new source.
            """CREATE TABLE egress_refusals_21 (
                agent TEXT NOT NULL,
                source TEXT NOT NULL CHECK (source IN ('egress', 'proxy', 'git')),
                target TEXT NOT NULL,
                why TEXT NOT NULL,
                count INTEGER NOT NULL,
                first_at REAL NOT NULL,
                last_at REAL NOT NULL,
                PRIMARY KEY (agent, source, target, why)
            )""",
            "INSERT INTO egress_refusals_21 (agent, source, target, why, count, first_at, last_at)"
            " SELECT agent, source, target, why, count, first_at, last_at FROM egress_refusals",
            "DROP TABLE egress_refusals",
            "ALTER TABLE egress_refusals_21 RENAME TO egress_refusals",
            # The change a run left on its branch, as JSON (fleet.repos.facts), for its summary.
            "ALTER TABLE run_reports ADD COLUMN repo_change TEXT",
        ),
    ),
)
