"""A shell command line read leniently, for deny rules: every command it may run, wherever
it can be found — inside substitutions, after wrappers (``env``, ``sudo``, ``xargs``,
``coproc``…), inside ``sh -c`` and ``eval`` scripts, after ``find -exec`` — with the words
the parser hangs on a redirection's target read back as arguments in their place, and a line
the parser cannot read cut roughly at every separator and quote. It errs on the refusing
side; the strict reading allow rules rely on is :mod:`fleet.shell.commands`'s.
"""

from __future__ import annotations

import os
import re
import shlex

from tree_sitter import Node

from fleet.shell.commands import ARGUMENTS, MAX_TEXT, WRAPPERS, parse, walk, word_of

# Commands that run a command given after one of their flags (deny rules look there too).
_EXEC_FLAGS = {
    "find": frozenset({"-exec", "-execdir", "-ok", "-okdir"}),
    "fd": frozenset({"-x", "--exec", "-X", "--exec-batch"}),
    "fdfind": frozenset({"-x", "--exec", "-X", "--exec-batch"}),
}
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh"})


def mentioned_commands(text: str, depth: int = 0) -> list[str]:
    """Every command ``text`` may run, as canonical text, read leniently: for deny rules."""
    if depth > 3:
        return []
    if len(text) > MAX_TEXT:
        return _rough(text)
    found: list[str] = []
    root = parse(text).root_node
    if root.has_error:
        found.extend(_rough(text))
    hung = _hung_words(root)
    for node in walk(root):
        if node.type != "command":
            continue
        parts = sorted([*_arguments(node), *hung.pop(node.id, [])], key=lambda n: n.start_byte)
        words = [_loose(child) for child in parts]
        if not words:
            continue
        wrapped = os.path.basename(_unquote_loose(words[0])) in WRAPPERS
        # A wrapper's command is one of its tails: every tail is a candidate.
        found.extend(" ".join(words[start:]) for start in range(len(words) if wrapped else 1))
        found.extend(_script(words, depth))
        found.extend(_executed(words))
    found.extend(" ".join(_loose(word) for word in words) for words in hung.values())
    return found


def _executed(words: list[str]) -> list[str]:
    """The commands ``find -exec …`` or ``fd --exec …`` among ``words`` would run."""
    flags = _EXEC_FLAGS.get(os.path.basename(_unquote_loose(words[0])), frozenset())
    return [
        " ".join(words[at + 1 :])
        for at, word in enumerate(words[:-1])
        if _unquote_loose(word) in flags
    ]


def _script(words: list[str], depth: int) -> list[str]:
    """The commands of the first ``sh -c SCRIPT`` or ``eval ARGS`` among ``words``."""
    for at, word in enumerate(words[:-1]):
        name = os.path.basename(_unquote_loose(word))
        if name == "eval":
            script = " ".join(_unquote_loose(w) for w in words[at + 1 :])
            return mentioned_commands(script, depth + 1)
        if name in SHELLS:
            rest = words[at + 1 :]
            flag = next((i for i, w in enumerate(rest) if re.fullmatch(r"-[a-z]*c[a-z]*", w)), None)
            if flag is None or flag + 1 >= len(rest):
                return []
            return mentioned_commands(_unquote_loose(rest[flag + 1]), depth + 1)
    return []


def _rough(text: str) -> list[str]:
    """A line the parser cannot read, cut at every separator, substitution and quote, the
    leading assignments dropped, each tail after a wrapper kept too."""
    found: list[str] = []
    for piece in re.split(r"[;&|\n(){}`'\"]|\$\(", text):
        words = piece.split()
        while words and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
        if words:
            wrapped = os.path.basename(words[0]) in WRAPPERS
            found.extend(" ".join(words[at:]) for at in range(len(words) if wrapped else 1))
    return found


def _arguments(node: Node) -> list[Node]:
    """A command's words, with those the parser hangs on its own redirections."""
    words = [
        (c.named_children[0] if c.type == "command_name" and c.named_child_count else c)
        for c in node.children
        if c.type not in ("variable_assignment", "file_redirect", "herestring_redirect")
        and c.is_named
    ]
    return words + [w for c in node.children for w in _redirect_words(c)]


def _hung_words(root: Node) -> dict[int, list[Node]]:
    """Words the parser hangs on a statement's redirections (``rm 2>/dev/null -rf x``
    holds one redirection with three destinations), which the shell passes as arguments to
    the statement's last command, keyed by that command's id (or by the statement's own when
    it has no command)."""
    hung: dict[int, list[Node]] = {}
    last: dict[int, Node | None] = {}
    for node in walk(root):
        if node.type != "redirected_statement":
            continue
        words = [word for child in node.children for word in _redirect_words(child)]
        if words:
            owner = _last_command(node, last)
            hung.setdefault(owner.id if owner else node.id, []).extend(words)
    return hung


def _last_command(node: Node, memo: dict[int, Node | None]) -> Node | None:
    """The command a statement ends with (``rm`` in ``a | rm``), remembered per node."""
    chain: list[int] = []
    current: Node | None = node
    while current is not None and current.type != "command" and current.id not in memo:
        chain.append(current.id)
        if current.type == "redirected_statement":
            current = current.child_by_field_name("body")
        else:
            named = [c for c in current.children if c.is_named and c.type != "comment"]
            current = named[-1] if named else None
    found = memo[current.id] if current is not None and current.id in memo else current
    memo.update(dict.fromkeys(chain, found))
    return found


def _redirect_words(node: Node) -> list[Node]:
    """The words after a redirection's own target (after a heredoc's delimiter)."""
    if node.type == "file_redirect":
        return node.children_by_field_name("destination")[1:]
    if node.type == "heredoc_redirect":
        return node.children_by_field_name("argument")
    return []


def _loose(node: Node) -> str:
    word = word_of(node) if node.type in ARGUMENTS else None
    return word.canonical if word is not None else (node.text or b"").decode()


def _unquote_loose(text: str) -> str:
    try:
        words = shlex.split(text)
    except ValueError:
        return text
    return " ".join(words)
