"""The doubles of the fleet's own parts for unit tests: a supervisor, launches, stores, spawn
queues, budgets, job contexts, usage rows."""
