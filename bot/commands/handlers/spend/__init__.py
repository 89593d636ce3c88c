"""The commands on what the fleet spends: usage, pace and the report, budgets, accounts, raise
at a cap, and what a merged change cost."""
