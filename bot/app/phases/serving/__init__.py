"""What serves the operator: the command families and their router, the scheduler's jobs, the
dashboard, the chat connectors."""
