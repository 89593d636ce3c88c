"""What travels through the door: MCP's streamable HTTP as the door frames it
(:mod:`.framing`, the agent's ``Accept`` in :mod:`.accept`), one request's exchange from
its POST to its answer (:mod:`.exchange`), the server's messages held for the agent's
listening stream (:mod:`.held`), a call waiting on its ask (:mod:`.waiting`), and what the
door sends an agent, scrubbed of every secret (:mod:`.outgoing`)."""
