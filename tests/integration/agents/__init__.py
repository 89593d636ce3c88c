"""Integration tests of the agents room."""
