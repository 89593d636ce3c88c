"""The ledger's schema steps of the MCP door (32 on): every call an agent made through it."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

MCP: tuple[Migration, ...] = (
    Migration(
        32,
        "every call through the MCP door, audited",
        (
            # One row per call an agent made through the MCP door (fleet.mcp.door.routes), whatever
            # its outcome. `agent` is plain text, as in `usage`: the audit outlives the agent.
            # `run_id`: the agent's run open when the call ended (NULL: none open); `task_id`:
            # that run's task, if any. `server` is a name of the config's `mcp:` section;
            # `method` the JSON-RPC method (`tools/call`, `resources/read`, ...), `name`
            # the tool (a resource's URI, a prompt's name), the agent's words, kept cut.
            # `arguments` and `result` are redacted, one line, capped (fleet.mcp.hooks).
            # `cost_usd`: the server's `price_per_call` when it bills the call (NULL: not
            # priced, or not billed); the same dollars are a `usage` row of provider `mcp`.
            """CREATE TABLE mcp_calls (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at REAL NOT NULL,
                agent TEXT NOT NULL,
                run_id INTEGER,
                task_id INTEGER,
                server TEXT NOT NULL,
                method TEXT NOT NULL,
                name TEXT NOT NULL DEFAULT '',
                outcome TEXT NOT NULL,
                seconds REAL NOT NULL,
                bytes_in INTEGER NOT NULL DEFAULT 0,
                bytes_out INTEGER NOT NULL DEFAULT 0,
                arguments TEXT NOT NULL DEFAULT '',
                result TEXT NOT NULL DEFAULT '',
                why TEXT NOT NULL DEFAULT '',
                cost_usd REAL
            )""",
            "CREATE INDEX mcp_calls_by_agent ON mcp_calls(agent, id)",
            "CREATE INDEX mcp_calls_by_run ON mcp_calls(run_id, id)",
        ),
    ),
)
