"""The paths a stdio server's words name, read the way the program reads them rather than as
they are spelled: a word's shell-style quotes taken off (``--opt="/w/x.js"``), a value after
``=`` or glued to a one-letter option (``-r/w/x.js``), the words of a variable node or a
shell splits (``NODE_OPTIONS='--require "/w/x.js"'``) and path lists (``PYTHONPATH=/a:/b``),
an argument file (``@/w/args.txt``: the file itself, and every path in it, read as node,
javac and Python's argparse read one), a ``file:`` URL percent-decoded
(``file:///w/h%6Fok.js``), and the string literals and path-like runs of code an
interpreter is given to run (``python3 -c "…sys.path.insert(0, '/w')…"``, ``node -e``).

Each path found is a :class:`Found`: where it stands in the word (``how``, said in the
refusal) and whether it was given as a place of its own (``whole``: an argument or a value
is the path; a path only mentioned in code or inside an argument file is not), which
:mod:`fleet.mcp.config.places` uses to decide whether a path that *holds* a forbidden place
clashes too. Code that computes a path while it runs (``'/w' + 'ork'``) is not read here:
the server's sandbox (:mod:`fleet.mcp.upstream.confined`) keeps it from such places.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

ARGFILE_BYTES = 1024 * 1024
"""How much of an argument file is read; past it the rest is not looked at."""
ARGFILE_DEPTH = 2
"""How deep argument files naming argument files are followed."""
CODE_OPTIONS = frozenset({"-c", "-e", "--eval", "-p", "--print", "-E", "-r", "--exec"})
"""Options after which an interpreter (python, node, perl, ruby, sh) takes code to run
(``-r``: php's; node's ``-r`` takes a path, which the code's reading finds too)."""

_WORDS = re.compile(r"[\s=,;:]+")
"""What separates the paths in a word or a variable's value (``a:b``, ``--x=/p``)."""
_QUOTED = re.compile(r"""(['"`])((?:\\.|(?!\1)[^\\])*)\1""", re.DOTALL)
"""A string literal in code: single, double or backtick quotes, escapes kept."""
_PATHLIKE = re.compile(
    r"""(?:(?<=^)|(?<=[\s'"`(\[{,=:;]))(?:~[\w.-]*|\.{1,2})?/[^\s'"`()\[\]{},;:|&<>]+"""
)
"""A run of code that reads as a path: ``/…``, ``~/…``, ``~user/…``, ``./…``, ``../…``
after a blank, a quote, a bracket or a separator (so ``a/b`` in ``x = a/b`` is a division,
not a path)."""
_GLUED = re.compile(r"^-[A-Za-z](?=[/~.])")
"""A one-letter option with its value glued on (``-r/w/x.js``, ``-I./lib``)."""


@dataclass(frozen=True, slots=True)
class Found:
    """A path a word names: ``how`` it is read when not as written (``in its -c code``),
    and whether the word gives it as a place of its own (``whole``)."""

    path: Path
    how: str = ""
    whole: bool = True


def arg_paths(args: tuple[str, ...], base: Path, every_word: bool) -> Iterator[tuple[int, Found]]:
    """Each path ``args`` name, with the index of the argument it is in: each argument read
    as a word, and code after an interpreter's code option (``-c CODE``, ``--eval=CODE``,
    ``-cCODE``) read as code too. Relative paths are resolved against ``base``; ``every_word``:
    any bare word is taken for a path too (not only one that says it is)."""
    for index, arg in enumerate(args):
        before = args[index - 1] if index else ""
        code = _code_of(arg)
        if before in CODE_OPTIONS:
            code = arg
        if code is not None:
            for found in code_paths(code, base):
                yield index, found
        for found in word_paths(arg, base, every_word=every_word):
            yield index, found


def env_paths(value: str, base: Path, every_word: bool) -> Iterator[Found]:
    """Each path a variable's value names, its words split as a shell (and node, for
    ``NODE_OPTIONS``) splits them and as a path list (``:``) is split."""
    yield from word_paths(value, base, every_word=every_word)


def word_paths(text: str, base: Path, *, every_word: bool, depth: int = 0) -> Iterator[Found]:
    """Each path ``text`` names, read as a program reads it (see the module)."""
    seen: set[Path] = set()
    for word in _words(text):
        for found in _word(word, base, every_word=every_word, depth=depth):
            if found.path not in seen:
                seen.add(found.path)
                yield found


def code_paths(code: str, base: Path) -> Iterator[Found]:
    """The paths code names: each string literal (escapes read, as the interpreter reads
    them) and each run that reads as a path, relative ones resolved against ``base``."""
    pieces = [match.group(2) for match in _QUOTED.finditer(code)]
    pieces += [_unescaped(piece) for piece in pieces]
    pieces += [match.group(0) for match in _PATHLIKE.finditer(code)]
    seen: set[Path] = set()
    for piece in pieces:
        for found in word_paths(piece, base, every_word=False):
            if found.path not in seen:
                seen.add(found.path)
                yield Found(found.path, _joined("in its code", found.how), whole=False)


def _words(text: str) -> list[str]:
    """``text``'s words: as a shell splits it (quotes taken off) and as written split at
    blanks and separators, each then split at ``=`` and separators again, quotes off."""
    words: list[str] = []
    with contextlib.suppress(ValueError):  # an unbalanced quote: the plain split reads it
        words += shlex.split(text)
    words += [w for w in re.split(r"\s+", text) if w]
    out: list[str] = []
    for word in words:
        for piece in (word, *_WORDS.split(word)):
            piece = _unquoted(piece)
            if piece == "/" and text.strip() != "/":
                continue  # a division or a separator among other words, not the root given
            if piece and piece not in out:
                out.append(piece)
        if "file:" in word:  # a URL's own colon is no separator
            out.append(_unquoted(word[word.index("file:") :]))
    return out


def _word(word: str, base: Path, *, every_word: bool, depth: int) -> Iterator[Found]:
    if word.lower().startswith("file:"):
        path = _file_url(word)
        if path is not None:
            yield Found(path, "as a file URL")
        return
    if word.startswith("@") and len(word) > 1:
        yield from _argfile(word[1:], base, every_word=every_word, depth=depth)
        return
    glued = _GLUED.match(word)
    if glued is not None:
        yield from _word(word[glued.end() :], base, every_word=False, depth=depth)
        return
    if word.startswith("/"):
        yield Found(Path(word))
    elif word.startswith("~"):
        home = _home(word)
        if home is not None:
            yield Found(home)
    elif _relative(word, every_word=every_word):
        yield Found(base / word)


def _argfile(name: str, base: Path, *, every_word: bool, depth: int) -> Iterator[Found]:
    """``@name``: an argument file when ``name`` says it is a path or names a file (else an
    npm package's scope, ``@acme/server``): the file, then every path its words name."""
    home = _home(name) if name.startswith("~") else None
    says = name.startswith(("/", "./", "../")) or home is not None
    path = home if home is not None else Path(name) if name.startswith("/") else base / name
    if not says and not path.is_file():
        return
    yield Found(path, "as an argument file")
    if depth >= ARGFILE_DEPTH:
        return
    try:
        with path.open("rb") as file:
            text = file.read(ARGFILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return
    where = f"in the argument file {str(path)!r}"
    for line in text.splitlines():
        for found in word_paths(line, base, every_word=every_word, depth=depth + 1):
            yield Found(found.path, _joined(where, found.how), found.whole)


def _file_url(word: str) -> Path | None:
    """The path a ``file:`` URL names, percent-decoded; ``None`` for another host's."""
    parts = urlsplit(word)
    # A URL's host is read without regard to case (node, WHATWG): ``LOCALHOST`` is this one.
    if parts.netloc.lower() not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    return Path(path) if path.startswith("/") else None


def _home(word: str) -> Path | None:
    """``~/…`` or ``~user/…`` as a shell expands it (``None``: no such user, so the shell
    leaves the word as written, a name rather than a path)."""
    expanded = os.path.expanduser(word)
    return Path(expanded) if expanded.startswith("/") else None


def _code_of(arg: str) -> str | None:
    """The code in ``--eval=CODE`` or ``-cCODE`` (``None``: the argument carries none)."""
    for option in CODE_OPTIONS:
        if option.startswith("--") and arg.startswith(option + "="):
            return arg[len(option) + 1 :]
    if len(arg) > 2 and arg[:2] in ("-c", "-e") and not arg.startswith("--"):
        return arg[2:]
    return None


def _unquoted(word: str) -> str:
    """``word`` without the quotes around it, nor the brackets and separators code leaves
    at its edges (``'/w');`` is ``/w``)."""
    while len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"`":
        word = word[1:-1]
    return word.lstrip("'\"`([{").rstrip("'\"`)]};,")


def _unescaped(text: str) -> str:
    if "\\" not in text:
        return text
    try:
        return codecs.decode(text, "unicode_escape")
    except (UnicodeDecodeError, ValueError):
        return text


def _relative(word: str, *, every_word: bool) -> bool:
    if not word or word.startswith(("-", "@", "~")) or "://" in word:
        return False
    return every_word or word in (".", "..") or word.startswith(("./", "../")) or "/" in word


def _joined(outer: str, inner: str) -> str:
    return f"{outer}, {inner}" if inner else outer
