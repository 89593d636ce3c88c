"""Agents as scripts the `command` runtime runs: one that asks, floods, names hostile things, or
attacks its sandbox and git."""
