"""Forge events: webhooks verified and read once, GitLab's hooks, the poller, access."""
