"""Binding a command's words to its spec: positionals, flags and their typed values.

Flags stand anywhere before a ``rest`` argument; in a command that has flags, also inside
its ``rest`` text, lifted out of it (:func:`bind`). A word after the last argument that
follows a string flag's value is a multi-word value typed unquoted: the refusal shows it
quoted as it should have been typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from bot.commands.errors import ParseError
from bot.commands.parsing.shapes import CommandSpec, FlagSpec, FlagValue, show, suggest
from bot.commands.parsing.tokenizer import QUOTES, Lexer, Unterminated, unwrap_quotes

__all__ = ["bind"]

_INT_RE = re.compile(r"[+-]?[0-9]+")
_MAX_INT_DIGITS = 18  # int() of a huge digit string is slow and, past 4300 digits, raises
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _fail(spec: CommandSpec, problem: str) -> ParseError:
    return ParseError(f"{spec.name}: {problem}", usage=spec.usage)


def bind(spec: CommandSpec, lexer: Lexer) -> tuple[dict[str, str], dict[str, FlagValue]]:
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
                text = _rest_among_flags(spec, by_name, lexer, flags)
            else:
                text = lexer.remainder()
            args[arg.name] = text if arg.quoted else unwrap_quotes(text)
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
                name, value = _read_flag(spec, by_name, token.value, lexer, False, in_text=True)
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
    return " ".join(piece.strip() for piece in pieces if piece.strip())


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
    *,
    in_text: bool = False,
) -> tuple[str, FlagValue]:
    """Read one flag whose token is ``text``: its name and its typed value. ``in_text``:
    it stood inside a rest text, where ``--`` before it would have kept it as text."""
    name, eq, inline = text[2:].partition("=") if text.startswith("--") else (text, "", "")
    flag = by_name.get(name.lower()) if text.startswith("--") else None
    if flag is None:
        shown = text.partition("=")[0]
        guess = suggest(shown.lstrip("-").lower(), by_name)
        hint = f" (did you mean '--{guess}'?)" if guess else ""
        if guess and in_text:
            hint = f" (did you mean '--{guess}'? To keep it as text, put -- before it)"
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
