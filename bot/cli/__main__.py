"""``python -m bot.cli``: the ``fleetwarden`` command."""

from bot.cli import main

main()
