"""Scheduler: APScheduler jobs inside the orchestrator (pacing tick, watchdog sweep,
window resets, reports). Decisions stay pure functions of (ledger snapshot, clock)."""
