"""Permission rules: ``allow:`` and ``deny:`` patterns of an agent, in one portable form.

A rule is a tool's name, alone (``Edit``: every call of it) or with an argument pattern
(``Bash(git *)``, ``Bash(npm test)``, ``Write(src/**)``), as Claude Code writes its own
rules. Each runtime translates them into its CLI's native rules (Claude's
``permissions.allow``, opencode's ``permission`` map, Codex's and pi's gates); Fleetwarden
matches them itself too, for an ``always`` answer and a CLI with no rules of its own.

Tool names are the portable ones: ``Bash`` (a shell command), ``Edit``, ``Write``,
``Read``, ``WebFetch``, or a CLI's own tool name. In an argument pattern ``*`` matches any
run of characters (a ``/`` included) and ``**`` the same; everything else is literal —
but in an allow rule's shell pattern, word by word: a ``*`` standing alone is one or more
whole words, a ``*`` inside a word (``*.txt``) only characters of that word.

A ``Bash`` rule with a pattern is matched against a command line as a shell reads it
(:mod:`fleet.shell.commands`), and what "matches" means depends on the rule's side:

* an allow rule (:func:`first_match`) matches only when the line is settled simple commands
  and every one of them matches the pattern (its words re-joined canonically, so spacing and
  quoting change nothing and a quoted ``;`` is no separator), a wrapper (``sudo``, ``xargs``,
  ``sh -c``, ``env A=1``…) only a pattern that names it as its first word; the one exception
  is the line written exactly as a pattern without ``*`` (what an operator was shown whole);
* a deny rule (:func:`first_refusal`) refuses when the whole line or any command it may run,
  read leniently (inside ``$(…)``, after wrappers, inside ``sh -c``), matches.

An MCP server's tools are named ``mcp__<server>__<tool>``, as Claude Code names them; a rule
is one tool (``mcp__tracker__search``) or every tool of a server (``mcp__tracker``, or
``mcp__tracker__*``, both forms Claude Code takes), whatever the call's arguments. The
server and tool are whole names: ``mcp__tracker`` is not ``mcp__tracker2``'s, and
``mcp__tracker__search`` is not ``mcp__tracker__search_all``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleet.shell.commands import WRAPPERS, simple_commands
from fleet.shell.mentions import mentioned_commands

MAX_RULE = 512
_RULE = re.compile(r"(?P<tool>[A-Za-z][A-Za-z0-9_.:-]{0,63})(?:\((?P<arg>[^()\x00-\x1f]*)\))?")
MCP_PREFIX = "mcp__"
_MCP_RULE = re.compile(
    r"mcp__(?P<server>[a-z][a-z0-9-]{0,31})(?:__(?P<tool>\*|[A-Za-z0-9_.-]{1,128}))?"
)
_MCP_TOOL = re.compile(r"mcp__(?P<server>[a-z][a-z0-9-]{0,31})__(?P<tool>[A-Za-z0-9_.-]{1,128})")

# A CLI's own name for a tool, mapped to the portable one (matching is by portable name).
TOOL_ALIASES = {
    "bash": "Bash",
    "shell": "Bash",
    "commandExecution": "Bash",
    "exec_command": "Bash",
    "edit": "Edit",
    "MultiEdit": "Edit",
    "fileChange": "Edit",
    "apply_patch": "Edit",
    "write": "Write",
    "read": "Read",
    "webfetch": "WebFetch",
}


class BadRule(ValueError):
    """A rule that is not ``Tool`` or ``Tool(pattern)``; the message says how to write one."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule: the portable tool name and its argument pattern (``None``: any)."""

    tool: str
    arg: str | None

    def __str__(self) -> str:
        return self.tool if self.arg is None else f"{self.tool}({self.arg})"

    def matches(self, tool: str, subject: str) -> bool:
        """Whether the rule allows this call: for a shell command, every part of it."""
        if self.tool.startswith(MCP_PREFIX):
            return mcp_rule_covers(self.tool, tool)
        if portable_tool(tool) != self.tool:
            return False
        if self.arg is None:
            return True
        if self.tool != "Bash":
            return _globs(self.arg, subject.strip())
        return _allows_command(self.arg, subject.strip())

    def refuses(self, tool: str, subject: str) -> bool:
        """Whether the rule, as a deny rule, refuses this call: for a shell command, the
        whole line or any command in it."""
        if self.tool.startswith(MCP_PREFIX):
            return mcp_rule_covers(self.tool, tool)
        if portable_tool(tool) != self.tool:
            return False
        if self.arg is None:
            return True
        line = subject.strip()
        if self.tool != "Bash":
            return _globs(self.arg, line)
        pattern = " ".join(self.arg.split())
        candidates = [line, *mentioned_commands(line)]
        return any(_globs(pattern, text.strip()) for text in candidates)


def parse_rule(text: str) -> Rule:
    """``text`` as a :class:`Rule`; :class:`BadRule` naming what is wrong."""
    if len(text) > MAX_RULE:
        raise BadRule(f"rule is {len(text)} characters long; at most {MAX_RULE}")
    if text.strip().startswith(MCP_PREFIX):
        return _mcp_rule(text.strip())
    found = _RULE.fullmatch(text.strip())
    if found is None:
        raise BadRule(
            f"{text!r} is not a rule: write a tool's name, alone (`Edit`) or with a "
            "pattern of its argument in parentheses (`Bash(git *)`, `Bash(npm test)`)"
        )
    arg = found.group("arg")
    return Rule(portable_tool(found.group("tool")), arg.strip() if arg is not None else None)


def _mcp_rule(text: str) -> Rule:
    found = _MCP_RULE.fullmatch(text)
    if found is None:
        raise BadRule(
            f"{text!r} is not an MCP rule: write `mcp__SERVER__TOOL` for one tool, or "
            "`mcp__SERVER` (or `mcp__SERVER__*`) for every tool of a server, SERVER as the "
            "`mcp:` section names it (e.g. `mcp__tracker__search`, `mcp__tracker`); an MCP "
            "rule takes no pattern in parentheses"
        )
    server, tool = found.group("server"), found.group("tool")
    return Rule(mcp_tool_name(server, tool) if tool and tool != "*" else f"mcp__{server}", None)


def mcp_tool_name(server: str, tool: str) -> str:
    """The name rules give ``tool`` of the MCP server ``server``: ``mcp__<server>__<tool>``."""
    return f"{MCP_PREFIX}{server}__{tool}"


def mcp_server_of(tool: str) -> str | None:
    """The MCP server whose tool ``tool`` is (``mcp__<server>__<tool>``), else ``None``."""
    called = _MCP_TOOL.fullmatch(tool)
    return called.group("server") if called is not None else None


def mcp_rule_covers(rule: str, tool: str) -> bool:
    """Whether the MCP rule ``rule`` (``mcp__srv`` or ``mcp__srv__tool``, as parsed) covers
    the call of ``tool`` (``mcp__srv__tool``): the same server, and the same tool or any."""
    called = _MCP_TOOL.fullmatch(tool)
    if called is None:
        return False
    if rule == f"{MCP_PREFIX}{called.group('server')}":
        return True
    return rule == tool


def portable_tool(tool: str) -> str:
    return TOOL_ALIASES.get(tool, tool)


def first_match(rules: tuple[str, ...] | list[str], tool: str, subject: str) -> str | None:
    """The first of ``rules`` (texts; bad ones skipped) allowing a call, if any: for a
    shell command, one matching every part of it."""
    for text in rules:
        try:
            if parse_rule(text).matches(tool, subject):
                return text
        except BadRule:
            continue
    return None


def first_refusal(rules: tuple[str, ...] | list[str], tool: str, subject: str) -> str | None:
    """The first of ``rules`` (deny rules; bad ones skipped) refusing a call, if any: for a
    shell command, one matching the whole line or any command in it."""
    for text in rules:
        try:
            if parse_rule(text).refuses(tool, subject):
                return text
        except BadRule:
            continue
    return None


def _allows_command(arg: str, line: str) -> bool:
    if "*" not in arg and line == arg:
        return True  # exactly the line the rule spells out, nothing to read into it
    commands = simple_commands(line)
    if not commands:
        return False
    spelled = arg.split()
    for command in commands:
        if command.name in WRAPPERS and spelled[:1] != [command.words[0].value]:
            return False
        if not _words_glob(spelled, command.canonical.split()):
            return False
    return True


def _words_glob(pattern: list[str], words: list[str]) -> bool:
    """Whether a command's words (canonical, split at blanks) match a pattern's, word by
    word: a pattern word that is only ``*`` stands for one or more whole words; a ``*``
    inside a word (``*.txt``) for characters of that one word; any other word is literal.
    So ``chmod 644 *.txt`` allows ``chmod 644 a.txt``, never ``chmod 644 -R / .txt``."""
    # reach[j]: the pattern's first i words can match the command's first j words.
    reach = [True] + [False] * len(words)
    for token in pattern:
        after = [False] * (len(words) + 1)
        if re.fullmatch(r"\*+", token):
            seen = False
            for j in range(1, len(words) + 1):
                seen = seen or reach[j - 1]
                after[j] = seen
        else:
            for j in range(1, len(words) + 1):
                after[j] = reach[j - 1] and _globs(token, words[j - 1])
        reach = after
    return reach[len(words)]


def _globs(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern``, ``*`` any run of characters: the literal parts
    found in order, leftmost first (no backtracking, so a long line cannot stall it)."""
    parts = re.split(r"\*+", pattern)
    if len(parts) == 1:
        return text == pattern
    head, *middle, tail = parts
    if not text.startswith(head) or len(text) < len(head) + len(tail):
        return False
    at, end = len(head), len(text) - len(tail)
    if not text.endswith(tail):
        return False
    for part in middle:
        found = text.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True
