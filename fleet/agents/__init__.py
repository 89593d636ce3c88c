"""An agent as the config describes it: the roster entry and its :class:`AgentSpec`, its
restart settings, and what one ``spawn`` starts."""
