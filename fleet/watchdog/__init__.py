"""The watchdog: its pure decisions, the supervisor's actions that carry them out, and the
heartbeat endpoint agents report to."""
