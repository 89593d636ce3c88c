"""The command handlers, one module per command family; each coroutine returns markdown."""
