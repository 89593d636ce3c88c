"""The command grammar: a pure parser from a line of text to a :class:`Command`.

A spec table (:class:`CommandSpec`, with the other shapes in :mod:`bot.commands.parsing.shapes`,
re-exported here) describes each command's positionals, flags and subcommands; the words
after a command are bound to its spec by :mod:`bot.commands.parsing.binding`. :meth:`Grammar.parse`
turns text into a :class:`Command`, returns ``None`` for ordinary chat, or raises
:class:`~bot.commands.errors.ParseError` with a one-line message that names the problem and
shows the usage.

Words are read by :mod:`bot.commands.parsing.tokenizer` (shell-like quoting, but small). A token
whose first character is a quote is never a flag. The text for a ``rest`` argument is taken raw from
the line, never tokenized, so natural text such as ``it's fine`` needs no quoting. In a command that
has flags, they may stand anywhere in its ``rest`` text too (``task new Fix the login --agent
coder``): its own flags are lifted out and the words around them are the text; a ``--`` word ends
the flags, and an unknown ``--word`` stays text unless it is a likely typo of a flag. A word after a
command's last argument that follows a string flag's value is a multi-word value typed unquoted: the
refusal shows it quoted. A word that is no subcommand of a command with subcommands is answered with
the likeliest subcommand meant (:attr:`Command.near` keeps it for a handler's "not found").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from types import MappingProxyType
from typing import Final

from bot.commands.errors import NotFound, ParseError
from bot.commands.parsing.binding import bind
from bot.commands.parsing.shapes import (
    ArgSpec,
    Command,
    CommandSpec,
    FlagSpec,
    FlagValue,
    qualify,
    show,
    suggest,
    walk,
)
from bot.commands.parsing.tokenizer import QUOTES, Lexer, Unterminated
from fleet.schema import no_agent_words

__all__ = [
    "OTHER_NAMES",
    "ArgSpec",
    "Command",
    "CommandSpec",
    "FlagSpec",
    "FlagValue",
    "Grammar",
    "no_agent",
    "qualify",
    "show",
    "suggest",
    "walk",
]

_WORD_RE = re.compile(r"[a-z][a-z0-9-]*")


def no_agent(name: str, agents: Collection[str]) -> NotFound:
    """The refusal of ``name`` when no agent is called so, with the likeliest one meant."""
    return NotFound(no_agent_words(name, agents))


class Grammar:
    """Parses chat or console text against a table of command specs."""

    __slots__ = ("_by_name", "_prefix", "_specs")

    def __init__(self, specs: Sequence[CommandSpec], prefix: str = "!") -> None:
        if not prefix or any(ch.isspace() for ch in prefix):
            raise ValueError(f"command prefix must be non-empty without whitespace: {prefix!r}")
        self._prefix = prefix
        self._specs = qualify(specs)
        for spec in self._specs:
            _check_spec(spec, 0)
        self._by_name: dict[str, CommandSpec] = {}
        for spec in walk(self._specs):
            if spec.name in self._by_name:
                raise ValueError(f"duplicate command name: {spec.name!r}")
            self._by_name[spec.name] = spec

    @property
    def prefix(self) -> str:
        """The prefix that marks a chat message as a command, e.g. ``!``."""
        return self._prefix

    @property
    def specs(self) -> tuple[CommandSpec, ...]:
        """The top-level specs, with subcommands fully named."""
        return self._specs

    def command_names(self) -> tuple[str, ...]:
        """Every full command name, subcommands included (``"roster reload"``), in order."""
        return tuple(self._by_name)

    def spec(self, name: str) -> CommandSpec | None:
        """The spec for a full command name (``"roster reload"``), case-insensitive."""
        return self._by_name.get(" ".join(name.lower().split()))

    def parse(self, text: str, *, addressed: bool = False) -> Command | None:
        """Parse ``text``: a Command, ``None`` for ordinary chat, or raise ParseError.

        ``addressed`` text (the console, a DM, a mention) needs no prefix.
        """
        body = text.strip()
        prefixed = body.startswith(self._prefix)
        if prefixed:
            body = body[len(self._prefix) :].lstrip()
        elif not addressed:
            return None
        help_word = f"{self._prefix}help" if prefixed else "help"
        if not body:
            if prefixed:
                raise ParseError(f"empty command — try {help_word}")
            return None
        lexer = Lexer(body)
        spec: CommandSpec | None = None
        try:
            first = lexer.token()
            word = first.value if first else ""
            spec = None if " " in word else self._by_name.get(word.lower())
            if spec is None:
                raise ParseError(_unknown_command(word, self._top_names(), help_word))
            near: str | None = None
            while spec.subcommands and lexer.skip_space():
                said = lexer.word()
                sub = self._by_name.get(f"{spec.name} {said.lower()}")
                if sub is None:
                    near = _near_subcommand(spec, said)
                    break
                lexer.skip_word()
                spec = sub
            try:
                args, flags = bind(spec, lexer)
            except ParseError as exc:
                if near is None:
                    raise
                raise ParseError(
                    f"{exc.problem} — did you mean '{near}'?", usage=exc.usage
                ) from None
        except Unterminated as exc:
            problem = f"unterminated {exc.quote} quote — close it or escape it with \\{exc.quote}"
            if spec is None:
                raise ParseError(problem) from None
            raise ParseError(f"{spec.name}: {problem}", usage=spec.usage) from None
        return Command(
            name=spec.name,
            args=MappingProxyType(args),
            flags=MappingProxyType(flags),
            spec=spec,
            text=text,
            near=near,
        )

    def _top_names(self) -> list[str]:
        return [spec.name for spec in self._specs]


OTHER_NAMES: Final = {
    "list": "ps",
    "ls": "ps",
    "agents": "ps",
    "kill": "stop",
    "start": "spawn",
    "launch": "spawn",
    "run": "spawn",
    "tail": "logs",
    "output": "logs",
    "status": "ps",
}
"""Words other tools use for a command, and the command they mean here."""


def _unknown_command(word: str, names: Sequence[str], help_word: str) -> str:
    other = OTHER_NAMES.get(word.lower())
    guess = other if other in names else suggest(word.lower(), names)
    if guess is None:
        return f"unknown command {show(word)} — try {help_word}"
    return f"unknown command {show(word)} — did you mean '{guess}'? Try {help_word}"


def _near_subcommand(spec: CommandSpec, word: str) -> str | None:
    """The full name of ``spec``'s subcommand ``word`` is likely a typo of, if any."""
    if word.startswith("-") or word[:1] in QUOTES:
        return None
    words = {sub.name.rsplit(" ", 1)[-1]: sub.name for sub in spec.subcommands}
    guess = suggest(word.lower(), words)
    return None if guess is None else words[guess]


def _check_spec(spec: CommandSpec, depth: int) -> None:
    """Reject a spec the parser could not honour (a programming error, hence ValueError)."""
    words = spec.name.split(" ")
    if len(words) != depth + 1 or not all(_WORD_RE.fullmatch(word) for word in words):
        raise ValueError(f"bad command name {spec.name!r}: use one lowercase word")
    for sub in spec.subcommands:
        _check_spec(sub, depth + 1)
    arg_names = [arg.name for arg in spec.args]
    if len(set(arg_names)) != len(arg_names):
        raise ValueError(f"{spec.name}: duplicate argument names")
    for index, arg in enumerate(spec.args):
        if arg.rest and index != len(spec.args) - 1:
            raise ValueError(f"{spec.name}: rest argument {arg.name} must be last")
        if arg.required and index and not spec.args[index - 1].required:
            raise ValueError(f"{spec.name}: required {arg.name} follows an optional argument")
    flag_names = [flag.name for flag in spec.flags]
    if len(set(flag_names)) != len(flag_names):
        raise ValueError(f"{spec.name}: duplicate flag names")
    for flag in spec.flags:
        if not _WORD_RE.fullmatch(flag.name):
            raise ValueError(f"{spec.name}: bad flag name {flag.name!r}")
        if flag.kind not in ("str", "int", "bool"):
            raise ValueError(f"{spec.name}: --{flag.name} has unknown kind {flag.kind!r}")
        if flag.choices and flag.kind != "str":
            raise ValueError(f"{spec.name}: only string flags have choices, not --{flag.name}")
