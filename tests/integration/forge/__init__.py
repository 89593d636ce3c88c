"""Integration tests of the forge room."""
