"""The command handlers, one module per command family, in rooms by concern (agents, spend,
launches, places; the fleet's overview at the top); each coroutine returns markdown."""
