"""Agents in chat: runs, transcripts, peers' traffic and MCP calls."""
