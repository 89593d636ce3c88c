"""The bot: what operators meet. ``cli`` (the ``fleetwarden`` command), ``app`` (one running
Fleetwarden and its start phases), ``config`` (the config file), ``commands`` (what operators
type, and the handlers), ``render`` (fleet facts as markdown), ``chat`` (the bot's side of a
conversation), ``approvals`` (agents' asks in chat) and ``dashboard`` (the web pages and
``/metrics``)."""
