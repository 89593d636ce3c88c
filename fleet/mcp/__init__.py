"""The MCP door: the team's MCP servers reached by agents through Fleetwarden, which holds
their credentials, relays each call, and audits, approves and counts it.

What the config gives (:mod:`~fleet.mcp.model`) is served by :class:`~fleet.mcp.door.McpDoor`,
mounted on the heartbeat endpoint, over a roster of servers and grants
(:class:`~fleet.mcp.door.McpRoster`); each agent's MCP session there is relayed to a
connection of its own (:mod:`~fleet.mcp.session`, :mod:`~fleet.mcp.upstream`), asked of and
told to the app through :class:`~fleet.mcp.hooks.McpHooks`. The credentials are known to
the app's redactor through :class:`~fleet.mcp.credentials.McpSecrets`."""
