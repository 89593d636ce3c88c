"""A line's change and its landing: what the branch holds against its base, the new base
commit a strategy (squash, rebase or merge) makes, and what that commit says."""
