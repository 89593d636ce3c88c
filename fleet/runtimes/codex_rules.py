"""An agent's ``allow:`` and ``deny:`` rules as Codex's own execpolicy rules.

Codex 0.169 reads ``$CODEX_HOME/rules/*.rules``: Starlark lines such as
``prefix_rule(pattern=["git"], decision="allow")``. Measured: a ``forbidden`` rule refuses a
matching command under every approval policy (``never`` included) and the model reads the
rule's ``justification``; an ``allow`` rule runs it without asking under ``untrusted``.
A rule matches a command by its leading words, so only a shell rule made of plain words can
be one:

* ``Bash(git *)`` → ``prefix_rule(pattern=["git"], …)``: any ``git`` command;
* ``Bash(rm -rf /)`` as a deny rule → ``["rm", "-rf", "/"]``: a prefix forbids a little
  more than the rule says, which is the safe side of a denial. As an allow rule it would
  let more than written through, so an exact allow rule stays Fleetwarden's
  (:mod:`fleet.sessions.codex_asks` accepts the ask it matches);
* anything else (a ``*`` inside a word, quotes, edits' rules) is matched by Fleetwarden
  only, on the asks Codex makes.
"""

from __future__ import annotations

import json
import re

from fleet.permissions import BadRule, parse_rule

RULES_FILE = "fleetwarden.rules"
_WORD = re.compile(r"[A-Za-z0-9._/:=@+,%-]+")


def execpolicy(allow: tuple[str, ...], deny: tuple[str, ...]) -> str | None:
    """The rules file for ``allow`` and ``deny`` (``None``: none of them translates)."""
    lines = []
    for text in deny:
        words = _prefix(text, exact_ok=True)
        if words is not None:
            why = json.dumps(f"the agent's rule {text} denies it")
            lines.append(
                f'prefix_rule(pattern={_list(words)}, decision="forbidden", justification={why})'
            )
    for text in allow:
        words = _prefix(text, exact_ok=False)
        if words is not None:
            lines.append(f'prefix_rule(pattern={_list(words)}, decision="allow")')
    return "\n".join(lines) + "\n" if lines else None


def _prefix(text: str, *, exact_ok: bool) -> list[str] | None:
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
    elif not exact_ok:
        return None
    if not words or not all(_WORD.fullmatch(word) for word in words):
        return None
    return words


def _list(words: list[str]) -> str:
    return "[" + ", ".join(json.dumps(word) for word in words) + "]"
