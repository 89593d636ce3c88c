"""The forge door: the calls an agent on a forge run makes through ``fw-forge``, and the command
itself."""
