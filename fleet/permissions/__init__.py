"""Permission rules: ``allow:`` and ``deny:`` patterns in one portable form, and their
configuration keys."""
