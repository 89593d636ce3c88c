"""Agents' sandboxes: bubblewrap around each agent, and the doors of a locked network."""
