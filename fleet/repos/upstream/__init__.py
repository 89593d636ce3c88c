"""The upstream as Fleetwarden reaches it: its mirror and scratch repo, the credential
only Fleetwarden's own git holds, git's refusals said again in Fleetwarden's words, and
the branches on it that are someone else's."""
