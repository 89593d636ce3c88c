"""The commands Fleetwarden takes as only reading the workdir, for Codex's ``edits`` and
``read-only`` modes: a short explicit list, each command with the flags it may carry.

A command line is a read when the shell parser settles it (:mod:`fleet.shell.commands`:
no substitution, expansion, assignment or redirection to a file) into simple commands that
are all on the list, every flag of each is one the list names for it, no word is a file
name pattern the shell would expand (a file named ``--pre=x.sh`` would become a flag), and
every path lies inside the workdir. Anything else, an unknown command or flag included, is
not a read, and the operator is asked.

What is left out on purpose: flags that run a program or write a file (ripgrep's ``--pre``
and ``--search-zip``, find's ``-exec``/``-execdir``/``-ok``/``-delete``/``-fprint``, tree's
``-o``), flags that follow symbolic links out of the workdir, pagers (``less``, ``more``), and
``git``: a repository's own config can make any git command run a program
(``core.fsmonitor``, ``diff.external``, textconv drivers, ``core.pager``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleet.shell.commands import SimpleCommand, simple_commands


@dataclass(frozen=True, slots=True)
class Reader:
    """One reading command: its flags without a value, its flags taking the next word (or
    ``--flag=value``), and how many leading operands are not paths (grep's pattern)."""

    flags: frozenset[str] = frozenset()
    valued: frozenset[str] = frozenset()
    pattern_first: bool = False
    letters: str = ""  # short flags that may be bundled (``ls -la``)
    numeric: bool = False  # ``head -20``
    expression: dict[str, int] = field(default_factory=dict)  # find's tests and their arity


def _set(*words: str) -> frozenset[str]:
    return frozenset(words)


_GREP_VALUED = ("-e", "-A", "-B", "-C", "-m", "--max-count", "--include", "--exclude")
READERS: dict[str, Reader] = {
    "cat": Reader(_set("-n", "-b", "-s", "-A", "-E", "-T", "-v"), letters="nbsAETv"),
    "head": Reader(_set("-q", "-v"), _set("-n", "-c", "--lines", "--bytes"), numeric=True),
    "tail": Reader(_set("-q", "-v"), _set("-n", "-c", "--lines", "--bytes"), numeric=True),
    "wc": Reader(_set("-l", "-w", "-c", "-m", "-L"), letters="lwcmL"),
    "nl": Reader(_set("-ba", "-p")),
    "ls": Reader(letters="lahARt1rSdFGinsU"),
    "file": Reader(_set("-b", "-i", "--mime-type", "--brief")),
    "stat": Reader(_set("-t", "--terse"), _set("-c", "--format", "--printf")),
    "grep": Reader(
        _set(*(f"-{c}" for c in "rnilLcvwxEFHhosqIa"), "--color", "--line-number"),
        _set(*_GREP_VALUED, "--exclude-dir"),
        pattern_first=True,
        letters="rnilLcvwxEFHhosqIa",
    ),
    "rg": Reader(
        _set(
            *(f"-{c}" for c in "niSslcvwxFHNou"),
            *("--files", "--hidden", "--no-ignore", "--no-heading", "--heading", "--json"),
            *("--line-number", "--ignore-case", "--smart-case", "--fixed-strings", "-uu"),
            *("--count", "--files-with-matches", "--word-regexp", "--vimgrep", "--color"),
        ),
        _set("-g", "--glob", "-t", "--type", "-T", "--type-not", *_GREP_VALUED),
        pattern_first=True,
        letters="niSslcvwxFHNou",
    ),
    "find": Reader(
        expression={
            **dict.fromkeys(("-name", "-iname", "-path", "-ipath", "-type", "-size"), 1),
            **dict.fromkeys(("-maxdepth", "-mindepth", "-mtime", "-mmin", "-newer"), 1),
            **dict.fromkeys(("-print", "-print0", "-empty", "-not", "!", "(", ")"), 0),
            **dict.fromkeys(("-o", "-a", "-or", "-and", "-prune"), 0),
        }
    ),
    "tree": Reader(_set("-a", "-d", "-f", "-i", "--noreport"), _set("-L", "-I", "-P")),
    "pwd": Reader(),
}
_WITH_FILES = {"rg": "--files"}


def reads_only(line: str, cwd: str, workdir: str) -> bool:
    """Whether ``line`` (run in ``cwd``) only reads inside ``workdir``, by the list above."""
    if not _inside(cwd, workdir):
        return False
    commands = simple_commands(line)
    return bool(commands) and all(_reads(command, cwd, workdir) for command in commands or ())


def _reads(command: SimpleCommand, cwd: str, workdir: str) -> bool:
    if any(word.glob for word in command.words):
        return False
    argv = command.argv
    reader = READERS.get(argv[0])
    if reader is None:
        return False
    if reader.expression:
        return _find(argv[1:], reader, cwd, workdir)
    operands: list[str] = []
    pattern_given = False
    words = list(argv[1:])
    while words:
        word = words.pop(0)
        if word == "--":
            operands.extend(words)
            break
        if not word.startswith("-") or word == "-":
            operands.append(word)
            continue
        name, has_value, _ = word.partition("=")
        if name in reader.valued:
            if not has_value:
                if not words:
                    return False
                words.pop(0)
            pattern_given = pattern_given or name == "-e"
            continue
        if has_value and name == "--color" and name in reader.flags:
            continue
        if word in reader.flags or _bundled(word, reader):
            continue
        return False
    if reader.pattern_first and not pattern_given and _WITH_FILES.get(argv[0]) not in argv:
        if not operands:
            return False
        operands = operands[1:]
    return all(_inside(os.path.join(cwd, path), workdir) for path in operands)


def _bundled(word: str, reader: Reader) -> bool:
    body = word[1:]
    if reader.numeric and body.isdigit():
        return True
    return (
        bool(reader.letters)
        and not word.startswith("--")
        and all(letter in reader.letters for letter in body)
    )


def _find(words: Sequence[str], reader: Reader, cwd: str, workdir: str) -> bool:
    """find's start points (inside the workdir) and an expression of listed tests only."""
    at = 0
    while at < len(words) and not words[at].startswith("-") and words[at] not in ("!", "("):
        if not _inside(os.path.join(cwd, words[at]), workdir):
            return False
        at += 1
    while at < len(words):
        arity = reader.expression.get(words[at])
        if arity is None or at + arity >= len(words) + (arity == 0):
            return False  # an unlisted test or action, or a test without its value
        if words[at] == "-newer" and not _inside(os.path.join(cwd, words[at + 1]), workdir):
            return False
        at += 1 + arity
    return True


def _inside(path: str, root: str) -> bool:
    if not path or not root:
        return False
    full = os.path.realpath(path)
    top = os.path.realpath(root)
    return full == top or full.startswith(top.rstrip(os.sep) + os.sep)
