"""Integration tests of the tasks room."""
