"""What this host can do for a sandbox: whether bubblewrap works, control groups and their
freezer, its processes as /proc shows them, and where a sandbox's mounts would reach."""
