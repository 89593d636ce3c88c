"""The start of the core, in the order App.start opens it: the ledger, the heartbeat endpoint
and its doors, the repositories, the spend (budgets, pacing, the metering proxy), the SSH
hosts."""
