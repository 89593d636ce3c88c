"""Go RE2 patterns as Python ``re`` patterns, for rule sets written for Go (gitleaks).

The two syntaxes mostly agree. Where they do not, in what such rule sets use:

* a flag group in the middle of a pattern (``p8e-(?i)[a-z0-9]{32}``): RE2 applies it from
  there to the end of the enclosing group; Python refuses it. It becomes a scoped group,
  ``p8e-(?i:[a-z0-9]{32})``, closed before each ``|`` of that group and reopened after it.
* ``\\z`` (end of text) is Python's ``\\Z``.
* POSIX classes inside brackets (``[[:alnum:]]``) become their ASCII ranges.

Anything else Python refuses stays refused: :func:`compile_re2` raises ``re.error`` with
why. Patterns compile with ``re.ASCII``, as RE2's ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are
ASCII. Python's warnings about a pattern (a nested set) are errors here.
"""

from __future__ import annotations

import re
import warnings
from typing import Final

_POSIX: Final = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "ascii": "\\x00-\\x7f",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "word": "a-zA-Z0-9_",
    "xdigit": "0-9A-Fa-f",
}
_FLAGS: Final = re.compile(r"\(\?([imsU-]+)\)")
_CLASS: Final = re.compile(r"\[:(\^?)([a-z]+):\]")


def translate(pattern: str) -> str:
    """``pattern`` (RE2) written so Python reads it the same (the module says what)."""
    out: list[str] = []
    # Per open group: the flags opened mid-group and still to close there.
    scoped: list[list[str]] = [[]]
    at = 0
    in_class = False
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            escape = pattern[at : at + 2]
            out.append("\\Z" if escape == "\\z" and not in_class else escape)
            at += 2
            continue
        if in_class:
            posix = _CLASS.match(pattern, at)
            if posix is not None and posix[2] in _POSIX and not posix[1]:
                out.append(_POSIX[posix[2]])
                at = posix.end()
                continue
            if char == "]":
                in_class = False
            out.append(char)
            at += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            # A ']' first in a class (after a '^') is a literal.
            at += 1
            for lead in ("^", "]"):
                if pattern.startswith(lead, at):
                    out.append(lead)
                    at += 1
            continue
        flags = _FLAGS.match(pattern, at)
        if flags is not None and (at > 0 or len(scoped) > 1):
            out.append(f"(?{flags[1]}:")
            scoped[-1].append(flags[1])
            at = flags.end()
            continue
        if char == "(":
            scoped.append([])
        elif char == ")":
            out.append(")" * len(scoped.pop()) if len(scoped) > 1 else "")
        elif char == "|":
            # Close the scoped flags before the alternative, reopen them after it.
            opened = scoped[-1]
            out.append(")" * len(opened) + "|" + "".join(f"(?{f}:" for f in opened))
            at += 1
            continue
        out.append(char)
        at += 1
    out.append(")" * len(scoped[0]))
    return "".join(out)


def compile_re2(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled as Python reads it after :func:`translate` (``re.ASCII``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return re.compile(translate(pattern), re.ASCII)
        except (FutureWarning, DeprecationWarning) as warned:
            raise re.error(str(warned)) from warned
