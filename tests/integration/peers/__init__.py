"""Integration tests of the peers room."""
