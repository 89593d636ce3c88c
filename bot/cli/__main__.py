"""``python -m bot.cli``: the ``fleetwarden`` command."""

from bot.cli.command import main

main()
