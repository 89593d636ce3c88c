"""Backends: where an agent's process lives (subprocess now; tmux, ssh, docker later)."""
