"""The stores of the fleet at work: agents and their runs, heartbeats, which orchestrator may
act (leases), the spawn queue, operator schedules, and what agents were refused on their way
out."""
