"""Integration tests of the hosts room."""
