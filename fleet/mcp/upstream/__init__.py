"""The door's side towards the MCP servers: a connection opened per session
(:mod:`.connect`) over the SDK's transports with every message read within a cap
(:mod:`.capped`, :mod:`.capped_stdio`, :mod:`.capped_http`), and the credentials it holds
(:mod:`.credentials`, OAuth client credentials :mod:`.oauth`)."""
