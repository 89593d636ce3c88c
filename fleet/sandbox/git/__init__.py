"""An agent's git HEAD read without running anything the agent wrote."""
