"""Redaction: every secret Fleetwarden knows, and the common shapes of credentials, taken out
of text before it leaves for a chat service or a log file."""
