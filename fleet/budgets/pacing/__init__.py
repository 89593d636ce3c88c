"""Pacing: the law that spreads a budget over its window, the policy the proxy asks, and the
windows it reads."""
