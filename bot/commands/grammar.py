"""The command grammar: a pure parser from a line of text to a :class:`Command`.

A spec table (:class:`CommandSpec`) describes each command's positionals, flags and
subcommands; :meth:`Grammar.parse` turns text into a :class:`Command`, returns ``None``
for ordinary chat, or raises :class:`~bot.commands.errors.ParseError` with a one-line message
that names the problem and shows the usage.

Words are read by :mod:`bot.commands.tokenizer` (shell-like quoting, but small). A token whose
first character is a quote is never a flag. The text for a ``rest`` argument is taken
raw from the line, never tokenized, so natural text such as ``it's fine`` needs no
quoting. In a command that has flags, they may stand anywhere in its ``rest`` text too
(``task new Fix the login --agent coder``): its own flags are lifted out and the words
around them are the text; a ``--`` word ends the flags, and an unknown ``--word`` stays
text unless it is a likely typo of a flag. A word after a command's last argument that
follows a string flag's value is a multi-word value typed unquoted: the refusal shows it
quoted. A word that is no subcommand of a command with subcommands is answered with the
likeliest subcommand meant (:attr:`Command.near` keeps it for a handler's "not found").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Literal

from bot.commands.errors import NotFound, ParseError
from bot.commands.tokenizer import QUOTES, Lexer, Unterminated, unwrap_quotes
from fleet.schema import no_agent_words

FlagValue = str | int | bool

_WORD_RE = re.compile(r"[a-z][a-z0-9-]*")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_MAX_INT_DIGITS = 18  # int() of a huge digit string is slow and, past 4300 digits, raises
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """A ``--name`` option: a string, a whole number, or a switch (``bool``). A string flag
    with ``choices`` accepts only those (in any case)."""

    name: str
    kind: Literal["str", "int", "bool"]
    help: str
    metavar: str = "VALUE"
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        """How the flag appears in a usage line, e.g. ``[--lines N]`` or ``[--force]``."""
        if self.kind == "bool":
            return f"[--{self.name}]"
        return f"[--{self.name} {self.metavar}]"


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """A positional argument; ``rest`` takes the raw remainder of the line and comes last.
    ``agent``: it names an agent that must exist, so a refusal of a name no agent has says
    the one likely meant (the router sees to it, for every command so marked)."""

    name: str
    help: str
    required: bool = True
    rest: bool = False
    choices: tuple[str, ...] = ()
    agent: bool = False


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: its arguments, flags and subcommands, and the words that explain it.

    ``control`` commands change something and need the operator role; ``admin_only`` ones
    need the admin role. Subcommand names may be written as one word (``reload``) or in full
    (``roster reload``); :func:`qualify` gives them their full names.
    """

    name: str
    summary: str
    args: tuple[ArgSpec, ...] = ()
    flags: tuple[FlagSpec, ...] = ()
    control: bool = False
    admin_only: bool = False
    description: str = ""
    examples: tuple[str, ...] = ()
    subcommands: tuple[CommandSpec, ...] = ()

    @property
    def usage(self) -> str:
        """The usage line, e.g. ``logs NAME [--lines N]``; flags precede a ``rest`` argument."""
        parts = [self.name]
        if self.subcommands:
            words = (sub.name.rsplit(" ", 1)[-1] for sub in self.subcommands)
            parts.append("[" + "|".join(words) + "]")
        plain = [arg for arg in self.args if not arg.rest]
        rest = [arg for arg in self.args if arg.rest]
        parts.extend(arg.name if arg.required else f"[{arg.name}]" for arg in plain)
        parts.extend(flag.usage for flag in self.flags)
        parts.extend(arg.name if arg.required else f"[{arg.name}]" for arg in rest)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command: full ``name`` (``"roster reload"``), arguments, flags, spec, text.

    ``flags`` holds only the flags that were given; use the typed getters to read them.
    """

    name: str
    args: Mapping[str, str] = field(hash=False)
    flags: Mapping[str, FlagValue] = field(hash=False)
    spec: CommandSpec
    text: str
    near: str | None = None
    """The subcommand likely meant, when the word after the command was close to one but
    was read as its argument (``task nwe``): a "not found" for it names this too."""

    def str_flag(self, name: str) -> str | None:
        """The value of string flag ``name``, or ``None`` if it was not given."""
        value = self.flags.get(self._declared(name, "str"))
        return value if isinstance(value, str) else None

    def int_flag(self, name: str, default: int) -> int:
        """The value of whole-number flag ``name``, or ``default`` if it was not given."""
        value = self.flags.get(self._declared(name, "int"))
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def bool_flag(self, name: str) -> bool:
        """Whether switch ``name`` was given (and not set to false)."""
        return self.flags.get(self._declared(name, "bool")) is True

    def _declared(self, name: str, kind: str) -> str:
        # A typo in a handler must fail loudly rather than read as "flag not given".
        for flag in self.spec.flags:
            if flag.name == name and flag.kind == kind:
                return name
        raise ValueError(f"{self.name} declares no {kind} flag --{name}")


def qualify(specs: Iterable[CommandSpec], parent: str = "") -> tuple[CommandSpec, ...]:
    """Return ``specs`` with every subcommand renamed to its full name; idempotent."""
    out: list[CommandSpec] = []
    for spec in specs:
        name = spec.name
        if parent and not name.startswith(parent + " "):
            name = f"{parent} {name}"
        out.append(replace(spec, name=name, subcommands=qualify(spec.subcommands, name)))
    return tuple(out)


def walk(specs: Iterable[CommandSpec]) -> Iterator[CommandSpec]:
    """Yield every spec and, after each, its subcommands (depth first), fully named."""
    for spec in qualify(specs):
        yield spec
        yield from walk(spec.subcommands)


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``word``, if any is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def no_agent(name: str, agents: Collection[str]) -> NotFound:
    """The refusal of ``name`` when no agent is called so, with the likeliest one meant."""
    return NotFound(no_agent_words(name, agents))


def show(text: str, limit: int = 40) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return f"'{shown}'"


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
                args, flags = _bind(spec, lexer)
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


def _fail(spec: CommandSpec, problem: str) -> ParseError:
    return ParseError(f"{spec.name}: {problem}", usage=spec.usage)


def _bind(spec: CommandSpec, lexer: Lexer) -> tuple[dict[str, str], dict[str, FlagValue]]:
    """Match the remaining tokens to ``spec``'s positionals and flags."""
    args: dict[str, str] = {}
    flags: dict[str, FlagValue] = {}
    by_name = {flag.name: flag for flag in spec.flags}
    index = 0
    flags_ended = False
    valued: tuple[str, str] | None = None  # the string flag whose value was the last word
    while lexer.skip_space():
        word = lexer.word()
        if not flags_ended and word.startswith("-") and len(word) > 1:
            token = lexer.token()
            if token is None:  # unreachable: skip_space said something is left
                break
            if word == "--":
                flags_ended = True
                continue
            name, value = _read_flag(spec, by_name, token.value, lexer, index < len(spec.args))
            if name in flags:
                raise _fail(spec, f"--{name} given twice")
            flags[name] = value
            wordy = by_name[name].kind == "str" and not by_name[name].choices
            valued = (name, value) if wordy and isinstance(value, str) else None
            continue
        if index >= len(spec.args):
            words = _words_to_next_flag(lexer)
            problem = f"unexpected argument {show(_extra(lexer, word))}"
            if valued is not None:
                problem += " — quote it: " + _quoted_flag(valued[0], [valued[1], *words])
            raise _fail(spec, problem)
        valued = None
        arg = spec.args[index]
        index += 1
        if arg.rest:
            if spec.flags and not flags_ended:
                args[arg.name] = _rest_among_flags(spec, by_name, lexer, flags)
            else:
                args[arg.name] = unwrap_quotes(lexer.remainder())
            break
        token = lexer.token()
        if token is None:  # unreachable: skip_space said something is left
            break
        args[arg.name] = _choose(spec, arg.name, arg.choices, token.value)
    missing = [arg.name for arg in spec.args[index:] if arg.required]
    if missing:
        raise _fail(spec, "missing " + " and ".join(missing))
    return args, flags


def _rest_among_flags(
    spec: CommandSpec,
    by_name: Mapping[str, FlagSpec],
    lexer: Lexer,
    flags: dict[str, FlagValue],
) -> str:
    """The rest of the line as text, with ``spec``'s flags in it read into ``flags``.

    The text is raw, as a ``rest`` argument always is; the pieces between flags are joined
    by one space. A ``--`` word ends the flags (the rest after it is text, as typed). A
    ``--word`` that is no flag of ``spec`` stays text, unless it is a likely typo of one.
    A run opening with a quote is one piece of text, flag-like words and all.
    """
    pieces: list[str] = []
    start = lexer.pos
    while lexer.skip_space():
        word = lexer.word()
        flag_name = word[2:].partition("=")[0].lower()
        if word == "--" or (word.startswith("--") and _is_flag_here(flag_name, by_name)):
            pieces.append(lexer.text[start : lexer.pos])
            token = lexer.token()
            if token is None:  # unreachable: skip_space said something is left
                break
            if word == "--":
                pieces.append(lexer.remainder())
            else:
                name, value = _read_flag(spec, by_name, token.value, lexer, False)
                if name in flags:
                    raise _fail(spec, f"--{name} given twice")
                flags[name] = value
            start = lexer.pos
            continue
        if word[:1] in QUOTES:
            at = lexer.pos
            try:
                lexer.token()
            except Unterminated:  # natural text such as "'tis": a word as typed
                lexer.pos = at
                lexer.skip_word()
        else:
            lexer.skip_word()
    pieces.append(lexer.text[start : lexer.pos])
    return unwrap_quotes(" ".join(piece.strip() for piece in pieces if piece.strip()))


def _is_flag_here(name: str, by_name: Mapping[str, FlagSpec]) -> bool:
    """Whether ``--name`` in a command's text is read as a flag: one of its own, or a
    likely typo of one (which the flag reader refuses with the one meant)."""
    return name in by_name or suggest(name, by_name) is not None


def _words_to_next_flag(lexer: Lexer) -> list[str]:
    """The raw words from here up to the next ``--`` word (not consumed)."""
    words: list[str] = []
    for word in lexer.text[lexer.pos :].split():
        if word.startswith("--"):
            break
        words.append(word)
    return words


def _quoted_flag(name: str, words: Sequence[str]) -> str:
    """``--name "the words"``, as the flag should have been typed (in code, if it can be)."""
    text = " ".join(words)
    if '"' not in text:
        value = f'"{text}"'
    elif "'" not in text:
        value = f"'{text}'"
    else:
        value = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    shown = show(value, 80)[1:-1]  # control characters escaped, a long value cut
    return f"--{name} {shown}" if "`" in shown else f"`--{name} {shown}`"


def _extra(lexer: Lexer, word: str) -> str:
    """The unexpected token's value, or its raw word if it cannot be tokenized."""
    try:
        token = lexer.token()
    except Unterminated:  # natural text such as "it's": show it as typed
        return word
    return token.value if token else word


def _choose(spec: CommandSpec, label: str, choices: tuple[str, ...], value: str) -> str:
    """``value`` as the choice it names (any case); ``label`` names the argument or flag."""
    if not choices:
        return value
    for choice in choices:
        if choice.lower() == value.lower():
            return choice
    guess = suggest(value.lower(), choices)
    hint = f" — did you mean '{guess}'?" if guess else ""
    allowed = ", ".join(choices)
    raise _fail(spec, f"{label} must be one of {allowed}, got {show(value)}{hint}")


def _read_flag(
    spec: CommandSpec,
    by_name: Mapping[str, FlagSpec],
    text: str,
    lexer: Lexer,
    positional_expected: bool,
) -> tuple[str, FlagValue]:
    """Read one flag whose token is ``text``: its name and its typed value."""
    name, eq, inline = text[2:].partition("=") if text.startswith("--") else (text, "", "")
    flag = by_name.get(name.lower()) if text.startswith("--") else None
    if flag is None:
        shown = text.partition("=")[0]
        guess = suggest(shown.lstrip("-").lower(), by_name)
        hint = f" (did you mean '--{guess}'?)" if guess else ""
        if not guess and positional_expected:
            hint = " (put -- before an argument that starts with '-')"
        raise _fail(spec, f"unknown flag {show(shown)}{hint}")
    if flag.kind == "bool":
        if not eq:
            return flag.name, True
        if inline.lower() in _TRUE | _FALSE:
            return flag.name, inline.lower() in _TRUE
        raise _fail(spec, f"--{flag.name} is a switch: write --{flag.name} or --{flag.name}=false")
    if not eq:
        if not lexer.skip_space():
            raise _fail(spec, f"--{flag.name} needs a value")
        if lexer.word().startswith("--"):
            raise _fail(spec, f"--{flag.name} needs a value (for one starting with '--' quote it)")
        token = lexer.token()
        inline = token.value if token else ""
    if flag.kind == "str":
        return flag.name, _choose(spec, f"--{flag.name}", flag.choices, inline)
    return flag.name, _int_value(spec, flag, inline)


def _int_value(spec: CommandSpec, flag: FlagSpec, text: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise _fail(spec, f"--{flag.name} expects a whole number, got {show(text)}")
    low, high = flag.minimum, flag.maximum
    negative = text.startswith("-")
    value = int(text) if len(text.lstrip("+-")) <= _MAX_INT_DIGITS else None
    too_low = low is not None and (value < low if value is not None else negative)
    too_high = high is not None and (value > high if value is not None else not negative)
    if too_low or too_high:
        if low is not None and high is not None:
            bound = f"between {low} and {high}"
        else:
            bound = f"at least {low}" if low is not None else f"at most {high}"
        raise _fail(spec, f"--{flag.name} must be {bound}, got {show(text)}")
    if value is None:
        raise _fail(spec, f"--{flag.name} has too many digits, got {show(text)}")
    return value
