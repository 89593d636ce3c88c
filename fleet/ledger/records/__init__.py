"""The ledger's records: what its stores read and write, as plain values — agents and runs,
forge runs, lines, approvals, budgets and chat."""
