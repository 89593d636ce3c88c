"""Spend in chat: budgets, the cost of changes, pacing reports and their charts."""
