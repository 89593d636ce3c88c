"""Integration tests of the connectors room."""
