"""Integration tests of the runtimes room."""
