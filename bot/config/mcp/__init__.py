"""The config's checks of MCP across entries: servers, grants and credentials
(:mod:`.checks`), and where a stdio server or a skill may be (:mod:`.places`)."""
