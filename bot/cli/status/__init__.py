"""``fleetwarden status``: the fleet, its forge runs and one agent, read from the control
socket or the ledger and shown as text, tables or JSON."""
