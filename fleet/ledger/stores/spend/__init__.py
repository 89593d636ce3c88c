"""The stores of what the fleet spends: metered usage and quota signals, budgets and their
steps, accounts, the quotes kept on runs and the asks at a cap."""
