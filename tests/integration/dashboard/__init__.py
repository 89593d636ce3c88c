"""Integration tests of the dashboard room."""
