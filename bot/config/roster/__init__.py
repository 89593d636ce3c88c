"""The roster file: reading it, and editing it from chat round-trip."""
