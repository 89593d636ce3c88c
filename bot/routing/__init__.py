"""From a chat message to a command run and its answer: the router, and where answers go
(threads, one per topic)."""
