"""Integration tests of the operations room."""
