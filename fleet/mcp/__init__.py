"""The MCP door: the team's MCP servers reached by agents through Fleetwarden, which holds
their credentials, relays each call, and audits, approves and counts it."""
