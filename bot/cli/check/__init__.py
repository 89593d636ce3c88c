"""``fleetwarden check-config``: what it says of a config beyond its schema — offline, each
problem on its line (:mod:`.offline`); with ``--online``, what each forge, repository, MCP
server and Slack answers its credential (:mod:`.online`, with GitLab's, the MCP servers' and
Slack's own asks in :mod:`.gitlab`, :mod:`.mcp`, :mod:`.slack`); and the summary of a config
found sound (:mod:`.summary`)."""
