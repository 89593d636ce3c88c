"""Agents on repositories: a mirror per repository, a branch and checkout per run, the git
door their pushes go through, and what the change is when a run ends."""
