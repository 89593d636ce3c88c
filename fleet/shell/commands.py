"""A shell command line read by a real shell parser (tree-sitter's Bash grammar): the simple
commands it runs, or nothing when it cannot be settled.

:func:`simple_commands` is the strict reading that allow rules and the list of reading
commands rely on. It settles a line only when it parses cleanly into simple commands joined by
``;``, ``&``, ``&&``, ``||``, ``|``, ``|&`` and newlines, each made of literal words (quoted or
not) and at most redirections that touch no file (``2>&1``, ``>&2``, ``2>/dev/null``). Anything
whose meaning only the running shell knows is unsettled and gives ``None``: parameter,
command, arithmetic and process substitutions, backticks, brace expansion (any word with an
unquoted ``{`` followed by an unquoted ``,`` or a ``..``) and tilde expansion, heredocs,
variable assignments (``FOO=1 git …``), subshells, groups, functions, ``if``, loops, ``!``,
``coproc`` and any reserved word where a command name goes, line continuations inside a
word, an escaped blank outside a word, words after a redirection's target (the parser hangs
them on the redirection), and any parse error.

The lenient reading deny rules use is :mod:`fleet.shell.mentions`'s; both share the parser,
the word reading and the list of wrappers here.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter_bash
from tree_sitter import Language, Node, Parser, Tree

# Commands that run another command (or code) given as their arguments: a rule matches one
# only when it names the wrapper itself as its first word.
WRAPPERS = frozenset(
    {
        *("env", "sudo", "doas", "su", "exec", "eval", "command", "builtin", "nohup", "time"),
        *("timeout", "nice", "ionice", "stdbuf", "setsid", "chroot", "xargs", "parallel"),
        *("watch", "strace", "ltrace", "taskset", "flock", "unbuffer", "script", "busybox"),
        *("sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh", "source", ".", "trap"),
        *("coproc", "unshare", "nsenter", "setpriv", "chrt", "prlimit", "firejail", "bwrap"),
        *("systemd-run", "systemd-nspawn", "run0", "pkexec", "runuser", "sg", "newgrp", "capsh"),
        *("faketime", "proot", "fakeroot", "fakechroot", "catchsegv", "valgrind", "gdb"),
        *("expect", "ssh", "cgexec", "numactl", "cpulimit", "torsocks", "proxychains"),
        *("proxychains4", "xvfb-run", "dbus-launch", "dbus-run-session", "chronic", "ifne"),
        *("lckdo", "sem", "entr", "tmux", "screen", "dtach", "nocache"),
    }
)
# Words the shell takes as syntax where a command name goes: a line with one is unsettled.
RESERVED = frozenset(
    {
        *("if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until"),
        *("do", "done", "in", "function", "coproc", "{", "}", "!", "[[", "]]"),
    }
)
MAX_TEXT = 20_000
_SEPARATORS = frozenset({";", "&", "&&", "||", "|", "|&", "comment"})
ARGUMENTS = frozenset({"word", "number", "raw_string", "string", "concatenation"})
_SAFE = re.compile(r"[\w@%+=:,./#^-]", re.ASCII)  # literal unquoted (``\w`` widened below)
_PLAIN = re.compile(r"[\w@%+=:,./-]+")  # written back unquoted
_NO_FILE = frozenset({"/dev/null"})
_GAP = re.compile(r"(?:[ \t]|\\\n)*")
_BLANKS = re.compile(r"(?:[ \t\n]|\\\n)*")


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a simple command: its value after quote removal, whether unquoted
    pattern characters make the shell expand it to file names, and the canonical spelling
    rules are matched against (quoted only where needed, in single quotes)."""

    value: str
    glob: bool
    canonical: str


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """A command name and its arguments, as the shell would run them."""

    words: tuple[Word, ...]

    @property
    def argv(self) -> tuple[str, ...]:
        return tuple(word.value for word in self.words)

    @property
    def name(self) -> str:
        return os.path.basename(self.words[0].value) if self.words else ""

    @property
    def canonical(self) -> str:
        """The words joined by single spaces, each spelled canonically: ``git  status`` and
        ``"git" status`` read the same, and a quoted ``;`` stays visibly quoted."""
        return " ".join(word.canonical for word in self.words)


def simple_commands(text: str) -> tuple[SimpleCommand, ...] | None:
    """The simple commands ``text`` runs, each unwrapped from a plain ``env``, or ``None``
    when the line is not made of settled simple commands only (see the module)."""
    return _strict(text)


@lru_cache(maxsize=256)
def _strict(text: str) -> tuple[SimpleCommand, ...] | None:
    if not text.strip() or len(text) > MAX_TEXT or re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text):
        return None
    root = parse(text).root_node
    if root.has_error or not _blank_between_tokens(root, text.encode()):
        return None
    found: list[SimpleCommand] = []
    if not _statements(root, text.encode(), found):
        return None
    commands = tuple(_unwrap_env(command) for command in found)
    return commands if commands and all(command.words for command in commands) else None


def _blank_between_tokens(root: Node, source: bytes) -> bool:
    """Whether all the line outside the parser's tokens (a word counting as one) is blanks
    and line continuations. The parser skips an escaped blank as if it were one (``\\ git``,
    ``> \\ /dev/null``) where the shell reads a word made of it, so a backslash in a gap is
    allowed only as a line continuation beside a real blank."""
    end, stack = 0, [root]
    while stack:
        node = stack.pop()
        if node.child_count and node.type not in ARGUMENTS:
            stack.extend(reversed(node.children))
            continue
        if not _blank(source[end : node.start_byte]):
            return False
        end = max(end, node.end_byte)
    return _blank(source[end:])


def _blank(gap: bytes) -> bool:
    text = gap.decode(errors="replace")
    if not _BLANKS.fullmatch(text):
        return False
    return "\\" not in text or re.search(r"[ \t\n]", text.replace("\\\n", "")) is not None


def _statements(node: Node, source: bytes, out: list[SimpleCommand]) -> bool:
    """Collect the simple commands under ``node``; ``False`` when something is unsettled."""
    if node.is_missing or node.type == "ERROR":
        return False
    if node.type in ("program", "list", "pipeline"):
        previous: Node | None = None
        for child in node.children:
            if previous is not None:
                gap = source[previous.end_byte : child.start_byte].decode()
                if "\\" in gap:
                    return False
            previous = child
            if child.type in _SEPARATORS:
                continue
            if not child.is_named or not _statements(child, source, out):
                return False
        return True
    if node.type == "redirected_statement":
        body = node.child_by_field_name("body")
        redirects = [c for c in node.children if c.id != (body.id if body else -1)]
        if body is None or not all(_harmless(r) for r in redirects):
            return False
        return _statements(body, source, out)
    if node.type == "command":
        command = _command(node, source)
        if command is None:
            return False
        out.append(command)
        return True
    return False


def _command(node: Node, source: bytes) -> SimpleCommand | None:
    words: list[Word] = []
    previous: Node | None = None
    for child in node.children:
        if previous is not None:
            gap = source[previous.end_byte : child.start_byte].decode()
            if not _GAP.fullmatch(gap) or not re.search(r"[ \t]", gap):
                return None  # a line continuation that joins two words, or none at all
        previous = child
        if child.type == "file_redirect":
            if not _harmless(child):
                return None
            continue
        target = child
        if child.type == "command_name":
            if child.named_child_count != 1:
                return None
            target = child.named_children[0]
            if target.type == "word" and (target.text or b"").decode() in RESERVED:
                return None  # ``coproc rm x``, ``coproc N { rm x; }``: syntax, not a name
        if target.type not in ARGUMENTS:
            return None
        word = word_of(target)
        if word is None:
            return None
        words.append(word)
    return SimpleCommand(tuple(words)) if words else None


def _harmless(node: Node) -> bool:
    """A redirection that opens no file: an fd duplicated (``2>&1``) or ``/dev/null``."""
    if node.type != "file_redirect":
        return False
    operator = [c.type for c in node.children if not c.is_named]
    destinations = node.children_by_field_name("destination")
    if len(destinations) != 1 or len(operator) != 1:
        return False  # the parser hangs the command's next words on it: ``2>/dev/null -rf x``
    target = destinations[0]
    if operator[0] in (">&", "<&") and target.type == "number":
        return re.fullmatch(rb"[0-9]+", target.text or b"") is not None  # not ``>&0x1``
    word = word_of(target) if target.type in ARGUMENTS else None
    plain = word is not None and not word.glob
    return (
        plain and word is not None and word.value in _NO_FILE and operator[0] in (">", ">>", "&>")
    )


def word_of(node: Node) -> Word | None:
    """A word's value and canonical spelling, or ``None`` when only the shell can tell it."""
    parts: list[tuple[str, bool]] = []  # (character, quoted)
    if not _decode(node, parts):
        return None
    if _braces(parts):
        return None
    glob = any(not quoted and ch in "*?[" for ch, quoted in parts)
    value = "".join(ch for ch, _ in parts)
    return Word(value, glob, _canonical(parts))


def _decode(node: Node, parts: list[tuple[str, bool]]) -> bool:
    text = (node.text or b"").decode()
    if node.type in ("word", "number"):
        return _unquoted(text, parts)
    if node.type == "raw_string":
        parts.extend((ch, True) for ch in text[1:-1])
        return len(text) >= 2
    if node.type == "string":
        if any(c.type not in ('"', "string_content") for c in node.children):
            return False
        return _double_quoted(text[1:-1], parts)
    if node.type == "concatenation":
        return all(c.type in ARGUMENTS and _decode(c, parts) for c in node.children)
    return False


def _unquoted(text: str, parts: list[tuple[str, bool]]) -> bool:
    escaped = False
    for ch in text:
        if escaped:
            if ch == "\n":
                return False
            parts.append((ch, True))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif _SAFE.fullmatch(ch) or (ch.isalnum() and not ch.isascii()) or ch in "*?[]{}":
            parts.append((ch, False))
        else:
            return False  # ``$``, ``~``, ``!``, ``(``…: the shell gives them a meaning
    return not escaped


def _double_quoted(text: str, parts: list[tuple[str, bool]]) -> bool:
    escaped = False
    for ch in text:
        if escaped:
            if ch != "\n":
                parts.extend(((ch, True),) if ch in '$`"\\' else (("\\", True), (ch, True)))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "$`":
            return False
        else:
            parts.append((ch, True))
    return not escaped


def _braces(parts: list[tuple[str, bool]]) -> bool:
    """Whether the shell may expand braces in the word (``{a,b}``, ``{1..3}``, nested
    ``{a,{b}}``): an unquoted ``{`` with an unquoted ``,`` or a ``..`` anywhere after it.
    Pairs are not matched, so some literal words (``@{u}..HEAD``) count too."""
    opened = False
    for at, (ch, quoted) in enumerate(parts):
        if opened and ch == "," and not quoted:
            return True
        after = parts[at + 1] if at + 1 < len(parts) else ("", True)
        if opened and ch == "." and after[0] == "." and not (quoted and after[1]):
            return True
        opened = opened or (ch == "{" and not quoted)
    return False


def _canonical(parts: list[tuple[str, bool]]) -> str:
    value = "".join(ch for ch, _ in parts)
    if all(quoted for _, quoted in parts) or all(_PLAIN.fullmatch(ch) for ch, _ in parts):
        return value if _PLAIN.fullmatch(value) else shlex.quote(value)
    # Unquoted pattern characters stay bare, the rest is quoted run by run.
    out: list[str] = []
    run = ""
    for ch, quoted in parts:
        if quoted and not _PLAIN.fullmatch(ch):
            run += ch
            continue
        if run:
            out.append(shlex.quote(run))
            run = ""
        out.append(ch)
    if run:
        out.append(shlex.quote(run))
    return "".join(out)


def _unwrap_env(command: SimpleCommand) -> SimpleCommand:
    """``env git status`` runs ``git status``: a plain ``env`` (no assignment, no option)
    is looked through; one with either is left as the wrapper it is."""
    words = command.words
    while len(words) > 1 and os.path.basename(words[0].value) == "env":
        rest = words[1:]
        if "=" in rest[0].value or rest[0].value.startswith("-"):
            break
        words = rest
    return SimpleCommand(words)


def walk(node: Node) -> list[Node]:
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(current.children))
    return out


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))


def parse(text: str) -> Tree:
    return _parser().parse(text.encode())
