"""The shapes of commands: what a command takes (:class:`FlagSpec`, :class:`ArgSpec`,
:class:`CommandSpec`), what a parsed one holds (:class:`Command`), and the small words the
grammar's messages share (:func:`suggest`, :func:`show`). :mod:`bot.commands.parsing.grammar`
re-exports them: import them from there."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

FlagValue = str | int | bool


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
    the one likely meant (the router sees to it, for every command so marked).
    ``quoted``: a ``rest`` whose quotes are its handler's to read (a value read as YAML),
    so one pair wrapping it all is kept, not taken off as it is for prose."""

    name: str
    help: str
    required: bool = True
    rest: bool = False
    choices: tuple[str, ...] = ()
    agent: bool = False
    quoted: bool = False


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


def show(text: str, limit: int = 40) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return f"'{shown}'"
