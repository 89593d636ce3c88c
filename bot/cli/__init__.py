"""The ``fleetwarden`` command and its subcommands (``accounts``, ``hosts``, ``status``), and the
reference blocks the guides carry, generated from the config schema and the command table.

:func:`main` is the console script's entry point (``bot.cli:main``)."""

from bot.cli.command import main as main
