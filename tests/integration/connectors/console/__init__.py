"""Integration tests of the console room."""
