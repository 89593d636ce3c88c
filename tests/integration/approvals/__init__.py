"""Integration tests of the approvals room."""
