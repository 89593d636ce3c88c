"""One running Fleetwarden: its start phases, what they build from the config, the connectors it
serves, the standby and the locks, and its own scheduled jobs."""
