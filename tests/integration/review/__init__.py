"""Integration tests of the review room."""
