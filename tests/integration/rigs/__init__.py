"""Integration tests of the rigs room."""
