"""Forge runs: what each event does to them, how they start and go on, their regular round, the
agent's desk and the words their agent is given."""
