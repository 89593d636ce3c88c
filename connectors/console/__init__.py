"""The console connector: Fleetwarden at the terminal, one operator, agents as tabs."""
