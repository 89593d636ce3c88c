"""A locked sandbox's way out: its doors to loopback, the allow-list's forward proxy, and the
refusals counted."""
