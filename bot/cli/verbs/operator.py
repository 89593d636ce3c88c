"""What a shell is told when the config it commands names no ``shell:``: the file to edit,
the exact lines to add to it, and that Fleetwarden must then be restarted — the control
socket's own refusal (:data:`bot.control.answers.NO_OPERATOR`) cannot know the file."""

from __future__ import annotations

import re
from typing import Final

from bot.config import Config

SHELL_ID: Final = "local"
"""The operator id suggested when no listed operator may type in a shell, as the embedded
default and the presets name theirs."""
_PLAIN: Final = re.compile(r"[A-Za-z0-9_.-]+")


def missing_shell(config: Config) -> str:
    """How to let the state dir's owner command the fleet ``config`` runs: an operator
    already listed for every connector (or for ``shell``) named by ``shell: {as: ID}``,
    else an admin of the shell alone added for it."""
    where = str(config.source) if config.source is not None else "the config file"
    fit = [op.id for op in config.operators if op.connector in (None, "shell")]
    if fit:
        lines = [f"shell: {{as: {_yaml(fit[0])}}}"]
        who = f"`{fit[0]}` is an operator of every connector here"
    else:
        taken = {op.id for op in config.operators}
        ident = SHELL_ID if SHELL_ID not in taken else f"{SHELL_ID}-shell"
        entry = f"  - {{id: {_yaml(ident)}, role: admin, connector: shell}}"
        lines = [*(["operators:"] if not config.operators else []), entry]
        lines.append(f"shell: {{as: {_yaml(ident)}}}")
        under = " (the entry under the existing `operators:`)" if config.operators else ""
        who = f"no operator listed here may type in a shell, so add one{under}"
    block = "\n".join(lines)
    return (
        f"the config names no operator for commands from a shell: {who}. Add to {where}:\n"
        f"{block}\nthen restart Fleetwarden with it"
    )


def _yaml(word: str) -> str:
    """``word`` as a YAML flow scalar: bare when plain, else double-quoted."""
    if _PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
