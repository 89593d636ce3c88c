"""Integration tests of the loopback room."""
