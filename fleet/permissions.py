"""Permission rules: ``allow:`` and ``deny:`` patterns of an agent, in one portable form.

A rule is a tool's name, alone (``Edit``: every call of it) or with an argument pattern
(``Bash(git *)``, ``Bash(npm test)``, ``Write(src/**)``), as Claude Code writes its own
rules. Each runtime translates them into its CLI's native rules (Claude's
``permissions.allow``, opencode's ``permission`` map, Codex's and pi's gates); Fleetwarden
matches them itself too, for an ``always`` answer and a CLI with no rules of its own.

Tool names are the portable ones: ``Bash`` (a shell command), ``Edit``, ``Write``,
``Read``, ``WebFetch``, or a CLI's own tool name. In an argument pattern ``*`` matches any
run of characters (a ``/`` included) and ``**`` the same; everything else is literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MAX_RULE = 512
_RULE = re.compile(r"(?P<tool>[A-Za-z][A-Za-z0-9_.:-]{0,63})(?:\((?P<arg>[^()\x00-\x1f]*)\))?")

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
        if portable_tool(tool) != self.tool:
            return False
        return self.arg is None or _glob(self.arg).fullmatch(subject.strip()) is not None


def parse_rule(text: str) -> Rule:
    """``text`` as a :class:`Rule`; :class:`BadRule` naming what is wrong."""
    if len(text) > MAX_RULE:
        raise BadRule(f"rule is {len(text)} characters long; at most {MAX_RULE}")
    found = _RULE.fullmatch(text.strip())
    if found is None:
        raise BadRule(
            f"{text!r} is not a rule: write a tool's name, alone (`Edit`) or with a "
            "pattern of its argument in parentheses (`Bash(git *)`, `Bash(npm test)`)"
        )
    arg = found.group("arg")
    return Rule(portable_tool(found.group("tool")), arg.strip() if arg is not None else None)


def portable_tool(tool: str) -> str:
    return TOOL_ALIASES.get(tool, tool)


def first_match(rules: tuple[str, ...] | list[str], tool: str, subject: str) -> str | None:
    """The first of ``rules`` (texts; bad ones skipped) matching a call, if any."""
    for text in rules:
        try:
            if parse_rule(text).matches(tool, subject):
                return text
        except BadRule:
            continue
    return None


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in re.split(r"\*+", pattern)]
    return re.compile(".*".join(parts), re.DOTALL)
