"""Compiled regular expressions, kept between starts of the command as Python keeps a
module's bytecode.

Python parses and compiles every pattern a module compiles when it loads, at every start:
some 600 for ``fleetwarden run`` (its own, and those of the libraries it loads), about a
tenth of its start's CPU. Once :func:`install` is called, what :mod:`re` makes of a pattern
(its flags, its code for the matching engine, its groups) is kept, keyed by the pattern and
its flags, in one file beside the package's bytecode (:mod:`bot.cli.kept`), and the next
start hands that to the engine as :mod:`re` itself does, without parsing the pattern again.
The engine checks the code it is handed (invalid code is refused, never run); anything kept
that it refuses, or that is not what this module writes, and the pattern is compiled as
Python compiles it.

Only what a start compiles before its command runs is kept (:func:`loaded` ends that):
the patterns a running command makes from what it is given (a name, a word) are not worth
keeping. Never kept either: a pattern the parser may warn about (a possible nested set or
set operation, ``[[``, ``--``, ``&&``, ``~~``, ``||``; a condition, ``(?(``; a group
name that is not an ASCII identifier), whose warning must reach whoever compiles it (a
caller may take it for an error), nor a subclass of ``str`` or ``bytes`` (formatted, its
key might not be its text). Installed only where compiling a pattern both ways gives the
same pattern (the engine's code is this Python's own).

How: :mod:`re` compiles through ``re._compiler.compile``, looked up at each compile;
:func:`install` puts :meth:`KeptPatterns.compile` there.
"""

from __future__ import annotations

import _sre  # type: ignore[import-not-found]
import atexit
import contextlib
import marshal
import re
from collections.abc import Callable
from re import _compiler, _parser  # type: ignore[attr-defined]
from typing import Any, Final

from bot.cli.kept import KeptFile, where

NAME: Final = "regex-code-1"
"""The file's name, before this Python's cache tag."""
_PROBE: Final = r"(?P<word>[A-Za-z_]\w*)\s*(?:=\s*(?P<value>[^;]+?))?(?=;|$)|\d{2,}"

Compiler = Callable[[Any, int], "re.Pattern[Any]"]
_installed: KeptPatterns | None = None


class KeptPatterns:
    """Patterns compiled through ``original``, or from what ``kept`` holds for them."""

    def __init__(self, kept: KeptFile, original: Compiler) -> None:
        self._kept = kept
        self._original = original
        self._keeping = True
        self.compiled = 0  # patterns this process parsed and compiled
        self.served = 0  # patterns it took from what was kept

    def compile(self, pattern: Any, flags: int = 0) -> re.Pattern[Any]:
        """``re._compiler.compile(pattern, flags)``, with a pattern's code kept."""
        if type(pattern) not in (str, bytes) or flags & re.DEBUG or _may_warn(pattern):
            return self._original(pattern, flags)
        key = _key(pattern, int(flags))
        data = self._kept.get(key) if self._keeping else self._kept.peek(key)
        if data is not None:
            found = _from(pattern, data)
            if found is not None:
                self.served += 1
                return found
        if not self._keeping:
            self.compiled += 1
            return self._original(pattern, flags)
        compiled, engine = _compiled(pattern, int(flags))
        self.compiled += 1
        if _named_plainly(engine[3]):
            self._kept.put(key, marshal.dumps(engine))
        return compiled

    def loaded(self) -> None:
        """The command's modules are loaded: from here on, keep nothing new; write what
        was added."""
        self._keeping = False
        self._kept.save()


def install() -> KeptPatterns | None:
    """Keep the patterns compiled from here on (saved at exit, and by :func:`loaded`);
    None where they are kept already, Python keeps no bytecode, or this Python's engine
    does not take its code as this module hands it over."""
    global _installed
    if _installed is not None or not _same_both_ways():
        return None
    path = where(NAME)
    if path is None:
        return None
    _installed = KeptPatterns(KeptFile(path), _compiler.compile)
    _compiler.compile = _installed.compile
    atexit.register(_installed._kept.save)
    return _installed


def loaded() -> None:
    """Keep no new pattern from here on, and write what was kept so far, if
    :func:`install` was called."""
    if _installed is not None:
        _installed.loaded()


_WARNED: Final = ("[[", "--", "&&", "~~", "||", "(?(")
"""What a pattern the parser may warn about holds (:mod:`re._parser`'s FutureWarnings on
sets; a condition naming a group)."""


def _may_warn(pattern: str | bytes) -> bool:
    if isinstance(pattern, bytes):
        return any(mark.encode() in pattern for mark in _WARNED)
    return any(mark in pattern for mark in _WARNED)


def _named_plainly(names: Any) -> bool:
    """Whether every group name is an ASCII identifier (of any other, the parser warns)."""
    return isinstance(names, dict) and all(
        isinstance(name, str) and name.isascii() and name.isidentifier() for name in names
    )


def _key(pattern: str | bytes, flags: int) -> str:
    if isinstance(pattern, bytes):
        return f"b{flags}\x00{pattern.decode('latin-1')}"
    return f"s{flags}\x00{pattern}"


def _compiled(pattern: str | bytes, flags: int) -> tuple[re.Pattern[Any], tuple[Any, ...]]:
    """``pattern`` compiled as ``re._compiler.compile`` compiles it, and what the engine
    was handed for it: its flags, its code, its groups, their names each way."""
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    names = dict(parsed.state.groupdict)
    by_index: list[str | None] = [None] * parsed.state.groups
    for name, index in names.items():
        by_index[index] = name
    engine = (
        int(flags | parsed.state.flags),
        [int(op) for op in code],
        parsed.state.groups - 1,
        names,
        tuple(by_index),
    )
    return _sre.compile(pattern, *engine), engine


def _from(pattern: str | bytes, data: bytes) -> re.Pattern[Any] | None:
    """``pattern`` handed to the engine with what was kept for it; None if that is not
    what :func:`_compiled` keeps, or the engine refuses it."""
    with contextlib.suppress(EOFError, ValueError, TypeError, RuntimeError, OverflowError):
        engine = marshal.loads(data)
        if not (isinstance(engine, tuple) and len(engine) == 5):
            return None
        flags, code, groups, names, by_index = engine
        if not (
            isinstance(flags, int)
            and isinstance(code, list)
            and all(type(op) is int for op in code)
            and isinstance(groups, int)
            and 0 <= groups <= len(code)  # each group marks the code twice
            and _named_plainly(names)
            and isinstance(by_index, tuple)
            and len(by_index) == groups + 1
            and all(type(at) is int and 0 < at <= groups for at in names.values())
            and {name: at for at, name in enumerate(by_index) if name is not None} == names
        ):
            return None
        found: re.Pattern[Any] = _sre.compile(pattern, flags, code, groups, names, by_index)
        return found
    return None


def _same_both_ways() -> bool:
    """Whether a pattern handed over as :func:`_compiled` hands it is the pattern
    ``re._compiler.compile`` makes (same flags, code and groups: patterns compare so)."""
    try:
        ours, engine = _compiled(_PROBE, re.IGNORECASE)
        again = _from(_PROBE, marshal.dumps(engine))
        return bool(ours == _compiler.compile(_PROBE, re.IGNORECASE) == again)
    except Exception:  # another Python's internals: do without
        return False
