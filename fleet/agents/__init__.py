"""An agent as the config describes it: the roster entry and its :class:`AgentSpec`, its
restart and fallback settings, and what one ``spawn`` starts."""
