"""Integration tests of the discord room."""
