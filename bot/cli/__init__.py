"""The ``fleetwarden`` command and its subcommands (``accounts``, ``hosts``, ``status``), and the
reference blocks the guides carry, generated from the config schema and the command table."""
