"""Agents that work together: who each agent's peers are (the roster told at launch), the
messages they send each other with their receipts (``fw-msg`` through the agent's door),
work handed on as tasks, and a second agent's review of a task's work before a human's."""
