"""Integration tests of the MCP door's room."""
