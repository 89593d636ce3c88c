"""A fake Discord: its gateway and REST API, interactions and reactions."""
