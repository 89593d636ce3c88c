"""A run's line, from its cutting to its end: the branch cut and named, who its commits
are by, the checkout made (here or on an SSH host) and what a launch needs of it, git run
safely in it, and what the run leaves on it when it ends."""
