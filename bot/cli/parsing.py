"""The ``fleetwarden`` command line as people type it: argparse, with the words it lacks.

- A misspelt long option is answered with the one likely meant (``--confg`` → ``--config``,
  ``--markdwon`` → ``--markdown``), from the options of the command it was given to; a
  misspelt command with the command likely meant (``stauts`` → ``status``).
- ``--config FILE`` may come before the command (``fleetwarden --config X status``) as well
  as after it; given both ways, the two must agree. ``--json`` before a command that takes it
  is read as after it (``fleetwarden --json status``). Another option of a command given
  before it is refused with where it goes: "put it after the command: ``fleetwarden tasks
  --markdown``".

argparse (3.11) has no ``suggest_on_error``: :class:`Parser` does it in its error path.
Subparsers are made of the same class, so every level of the command says so.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final, NoReturn

__all__ = ["FIRST_CONFIG", "Parser", "add_first_config", "parse", "past_config"]

FIRST_CONFIG: Final = "config_first"
"""Where ``--config`` given before the command is kept, until :func:`parse` moves it."""
_MEANT: Final = "_options_meant"  # the namespace's record of misspelt options and their guess
_INVALID_CHOICE: Final = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)$")


def past_config(words: list[str]) -> list[str]:
    """``words`` from the command word on, past a ``--config FILE`` given before it."""
    while words and words[0].startswith("--config"):
        words = words[1:] if "=" in words[0] else words[2:]
    return words


def _guess(word: str, candidates: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for option in parser._option_string_actions if option.startswith("--")]


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's commands (its subparsers by name), if it has any."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _tree(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for sub in _commands(parser).values():
        yield from _tree(sub)


class Parser(argparse.ArgumentParser):
    """An argument parser whose refusals name what was likely meant."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """As argparse's, noting for each unknown long option the one of this parser it
        is likely a typo of (the innermost command's guess is kept)."""
        given = argparse.Namespace() if namespace is None else namespace
        parsed, extras = super().parse_known_args(args, given)
        meant: dict[str, str] = dict(getattr(parsed, _MEANT, {}))
        for extra in extras:
            name = extra.partition("=")[0]
            if name in meant or not name.startswith("-"):
                continue
            options = _long_options(self)
            if name.startswith("--"):
                guess = _guess(name, options)
            else:  # `-c`: the one long option of that letter, as other tools spell it
                first = [o for o in options if len(name) == 2 and o[2:3] == name[1]]
                guess = first[0] if len(first) == 1 else None
            if guess is not None:
                meant[name] = guess
        setattr(parsed, _MEANT, meant)
        return parsed, extras

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        meant: dict[str, str] = getattr(parsed, _MEANT, {})
        delattr(parsed, _MEANT)
        if extras:
            hints = [
                f"{name}: did you mean {meant[name]}?"
                for name in dict.fromkeys(extra.partition("=")[0] for extra in extras)
                if name in meant
            ]
            if len(hints) == 1:
                hints = [hints[0].partition(": ")[2]]
            said = f" — {'; '.join(hints)}" if hints else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{said}")
        return parsed

    def error(self, message: str) -> NoReturn:
        """argparse's refusal, with the command likely meant for an unknown one."""
        found = _INVALID_CHOICE.search(message)
        if found is not None:
            choices = re.findall(r"'([^']*)'", found[2])
            guess = _guess(found[1], choices)
            if guess is not None:
                message = f"{message} — did you mean '{guess}'?"
        super().error(message)


def parse(parser: Parser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` (the process's, if ``None``) parsed: options before the command checked
    first, ``--config`` given there moved to the command's own. With ``--json`` among the
    words, words that do not parse are answered as every ``--json`` failure is: one object
    on stdout (``command`` null), the reason on stderr, exit status 2."""
    words = _json_after_command(parser, list(sys.argv[1:] if argv is None else argv))
    if "--json" not in (words[: words.index("--")] if "--" in words else words):
        return _parsed(parser, words)
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return _parsed(parser, words)
    except SystemExit as exc:
        if exc.code == 2:
            reason = said.getvalue().strip().splitlines()[-1:] or ["the words do not parse"]
            error = reason[0].removeprefix(f"{parser.prog}: error: ")
            body = {"command": None, "ok": False, "exit": 2, "outcome": "error", "error": error}
            print(json.dumps(body, ensure_ascii=True, indent=2))
        raise
    finally:
        sys.stderr.write(said.getvalue())


def _json_after_command(parser: Parser, words: list[str]) -> list[str]:
    """``fleetwarden --json status`` read as ``fleetwarden status --json``, for a command
    that takes ``--json``: the shell's verbs take it before them too."""
    commands = _commands(parser)
    if "--json" not in words:
        return words
    at = words.index("--json")
    command = next((i for i, w in enumerate(words) if w in commands), None)
    end = words.index("--") if "--" in words else len(words)
    if command is None:  # an unknown command word follows: say that, not where --json goes
        if not any(not word.startswith("-") for word in words[at + 1 : end]):
            return words
        return [*words[:at], *words[at + 1 : end], "--json", *words[end:]]
    if at > command or "--json" not in _long_options(commands[words[command]]):
        return words
    del words[at]
    words.insert(command, "--json")  # just after the command, which moved one to the left
    return words


def _parsed(parser: Parser, words: list[str]) -> argparse.Namespace:
    _check_before_command(parser, words)
    args = parser.parse_args(words)
    first: Path | None = getattr(args, FIRST_CONFIG, None)
    if hasattr(args, FIRST_CONFIG):
        delattr(args, FIRST_CONFIG)
    if first is not None:
        if not hasattr(args, "config"):
            parser.error(f"`{_command_of(parser, words)}` takes no --config")
        after: Path | None = args.config
        if after is not None and after != first:
            parser.error(
                f"--config given twice, before the command ({first}) and after it ({after}): "
                "give it once"
            )
        args.config = first
    return args


def _command_of(parser: argparse.ArgumentParser, words: Sequence[str]) -> str:
    """``fleetwarden`` and the command words in ``words`` (``fleetwarden matrix setup``)."""
    said = [parser.prog]
    level = parser
    for word in words:
        sub = _commands(level).get(word)
        if sub is not None:
            said.append(word)
            level = sub
    return " ".join(said)


def _check_before_command(parser: Parser, words: Sequence[str]) -> None:
    """Refuse an option before the command that is not the parser's own, saying what was
    meant and where it goes."""
    commands = _commands(parser)
    index = 0
    while index < len(words) and words[index].startswith("-") and words[index] != "--":
        word = words[index]
        name, eq, _ = word.partition("=")
        action = parser._option_string_actions.get(name)
        if action is not None:
            index += 1 if eq or action.nargs == 0 else 2
            continue
        command = next((w for w in words[index + 1 :] if w in commands), None)
        parser.error(_misplaced(parser, name, command))


def _misplaced(parser: Parser, name: str, command: str | None) -> str:
    """Why option ``name`` before the command (``command``, if one follows) is refused."""
    options = [] if command is None else _long_options(_commands(parser)[command])
    own = _guess(name, _long_options(parser))
    if own is not None and name not in options:
        return f"unknown option {name} — did you mean {own}?"
    if command is not None:
        meant = name if name in options else _guess(name, options)
        if meant is not None:
            typo = "" if meant == name else f"did you mean {meant}? "
            return (
                f"{typo}{meant} is an option of the command: put it after the command: "
                f"`{parser.prog} {command} {meant} …`"
            )
    everywhere = sorted({o for p in _tree(parser) for o in _long_options(p)})
    guess = _guess(name, everywhere)
    hint = f" — did you mean {guess}? options go after the command" if guess else ""
    return f"unknown option {name}{hint}"


def add_first_config(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--config`` before the command, as each command's own ``--config`` takes it."""
    parser.add_argument("--config", dest=FIRST_CONFIG, type=Path, metavar="CONFIG", help=help_text)
