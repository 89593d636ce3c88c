"""From a chat message to a handler: the router, access control, requests, confirmations."""
