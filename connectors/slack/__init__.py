"""The Slack connector: Socket Mode (or signed HTTP events), one control channel, a thread
per agent."""
