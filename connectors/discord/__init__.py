"""The Discord connector: a control channel on one server, one thread per agent."""
