"""The Slack connector: a control channel in one workspace, one thread per agent."""
