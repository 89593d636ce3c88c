"""A small MCP server that records what MCP clients send it."""
