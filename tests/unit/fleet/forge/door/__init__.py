"""The forge door and `fw-forge`: the agent's only way to the forge."""
