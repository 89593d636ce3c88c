"""An agent's ``allow:`` and ``deny:`` rules as Codex's own execpolicy rules.

Codex 0.169 reads ``$CODEX_HOME/rules/*.rules``: Starlark lines such as
``prefix_rule(pattern=["rm"], decision="forbidden")``. Measured: a ``forbidden`` rule refuses
a matching command under every approval policy (``never`` included) and the model reads the
rule's ``justification``. A rule matches a command by its leading words, so only a deny rule
made of plain words becomes one:

* ``Bash(curl *)`` → ``prefix_rule(pattern=["curl"], decision="forbidden", …)``;
* ``Bash(rm -rf /)`` → ``["rm", "-rf", "/"]``: a prefix forbids a little more than the rule
  says, which is the safe side of a denial;
* anything else (a ``*`` inside a word, quotes, edits' rules) is matched by Fleetwarden
  only, on the asks Codex makes.

Allow rules are never written: Codex's ``allow`` decision runs a command without asking and
outside Codex's own sandbox, by Codex's reading of a compound line, not Fleetwarden's. Every
allow rule is Fleetwarden's (:mod:`fleet.sessions.codex_asks` accepts the asks it matches,
every command of the line matching).
"""

from __future__ import annotations

import json
import re

from fleet.permissions.rules import BadRule, parse_rule

RULES_FILE = "fleetwarden.rules"
_WORD = re.compile(r"[A-Za-z0-9._/:=@+,%-]+")


def execpolicy(allow: tuple[str, ...], deny: tuple[str, ...]) -> str | None:
    """The rules file for ``deny`` (``None``: none of them translates). ``allow`` is taken
    and left out on purpose: see the module."""
    del allow
    lines = []
    for text in deny:
        words = _prefix(text)
        if words is not None:
            why = json.dumps(f"the agent's rule {text} denies it")
            lines.append(
                f'prefix_rule(pattern={_list(words)}, decision="forbidden", justification={why})'
            )
    return "\n".join(lines) + "\n" if lines else None


def _prefix(text: str) -> list[str] | None:
    """The leading words a shell rule matches, when a prefix rule can say it."""
    try:
        rule = parse_rule(text)
    except BadRule:
        return None
    if rule.tool != "Bash" or not rule.arg:
        return None
    words = rule.arg.split()
    if words and words[-1] == "*":
        words = words[:-1]
    if not words or not all(_WORD.fullmatch(word) for word in words):
        return None
    return words


def _list(words: list[str]) -> str:
    return "[" + ", ".join(json.dumps(word) for word in words) + "]"
