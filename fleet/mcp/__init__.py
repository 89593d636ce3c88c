"""The MCP door: the team's MCP servers reached by agents through Fleetwarden, which holds
their credentials, relays each call, and audits, approves and counts it.

Three rooms, one way down: :mod:`~fleet.mcp.door` (the routes and the sessions relayed)
uses :mod:`~fleet.mcp.upstream` (the servers reached, their credentials held) and
:mod:`~fleet.mcp.config` (what the config grants); all three use this package's own
modules — the model (:mod:`~fleet.mcp.model`), the app's side
(:class:`~fleet.mcp.hooks.McpHooks`), JSON-RPC framing (:mod:`~fleet.mcp.wire`), the
roster the door reads live (:mod:`~fleet.mcp.roster`), asks (:mod:`~fleet.mcp.asking`)
and audits (:mod:`~fleet.mcp.audits`).

What the config gives is served by :class:`~fleet.mcp.door.routes.McpDoor`, mounted on the
heartbeat endpoint; each agent's MCP session there is relayed to a connection of its own
(:mod:`~fleet.mcp.door.session`, :mod:`~fleet.mcp.upstream.connect`). The credentials are
known to the app's redactor through :class:`~fleet.mcp.upstream.credentials.McpSecrets`."""
