"""Metering: a reverse proxy on 127.0.0.1 that every agent's provider base URL points at.

It forwards each request to the provider's real upstream, passes the answer through as it
arrives, and reads the token usage out of the provider's own response (stream or not) into
the ledger, together with the provider's rate-limit headers. Agents need not cooperate.
"""
