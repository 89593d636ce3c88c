"""Unit tests of the MCP door."""
