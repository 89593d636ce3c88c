"""Integration tests of the repos room."""
