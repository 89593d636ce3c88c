"""``fleetwarden tasks``: the task register read from the ledger the config names, written
as documents (``TASKS.md``, ``MISSIONS.md``) or shown."""
