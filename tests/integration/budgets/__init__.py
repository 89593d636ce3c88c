"""Integration tests of the budgets room."""
