"""The ``fleetwarden`` command and its subcommands (``accounts``, ``hosts``, ``status``,
``tasks``), and the reference blocks the guides carry, generated from the config schema and
the command table.

:func:`main` is the console script's entry point (``bot.cli:main``). It loads the command
itself, so that Ctrl-C while the command is still loading (its imports take about a
second) ends it as quietly as later: ``fleetwarden run`` with status 0, as SIGINT always
does, any other with 130; never a traceback. Output piped into a reader that stops early
(``fleetwarden check-config | head``) ends it quietly too, with 141 as a shell reports a
command SIGPIPE ended."""

from __future__ import annotations

import gc
import os
import sys

from bot.cli import generated, patterns

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C ended
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def main() -> None:
    """Run the ``fleetwarden`` command line in ``sys.argv``. The garbage collector is off
    while the command loads its modules (:func:`bot.cli.command.loaded` turns it on), and
    the code its data classes generate and the patterns its modules compile are kept
    between starts (:mod:`bot.cli.generated`, :mod:`bot.cli.patterns`)."""
    gc.disable()
    patterns.install()
    generated.install()
    try:
        from bot.cli.command import main as command

        command()
    except KeyboardInterrupt:
        sys.exit(0 if _command(sys.argv[1:]) == "run" else EXIT_INTERRUPTED)
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(EXIT_BROKEN_PIPE)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and Python's flush of it at exit would
    raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _command(words: list[str]) -> str | None:
    """The command word in ``words``, past a ``--config FILE`` given before it."""
    from bot.cli.parsing import past_config

    words = past_config(words)
    return words[0] if words else None
