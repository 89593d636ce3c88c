"""Fleetwarden's own loopback servers' connections: how many each may hold, from whom, and
for how long (the metering proxy, the heartbeat endpoint, the dashboard)."""
