"""The commands on where agents work and what they reach: hosts, egress, repositories and the
forge."""
