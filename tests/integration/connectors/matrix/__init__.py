"""Integration tests of the matrix room."""
