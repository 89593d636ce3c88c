"""What the config says of MCP: the ``mcp:`` section's servers (:mod:`.schema`, their OAuth
entries :mod:`.oauth_entry`), each agent's grants of them (:mod:`.grants`) and skills
(:mod:`.skills`), the names a server and its tools may take (:mod:`.names`), the rules and
places that decide what an agent may reach (:mod:`.rules`, :mod:`.places`), and how a
credential written in the file is told from a name (:mod:`.heuristics`, :mod:`.refusals`)."""
