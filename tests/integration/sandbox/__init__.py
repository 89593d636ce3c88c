"""Integration tests of the sandbox room."""
