"""Accounts: the provider credentials the proxy holds for agents, and what each account has left."""
