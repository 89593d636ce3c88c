"""The file a loopback server's per-agent tokens and last port persist in
(:class:`fleet.connections.loopback.AgentSecrets`): ``{"version": 1, "port": 41234,
"tokens": {"coder-1": "..."}, "retired": {"coder-1": ["..."]}}``, mode 0600, replaced
atomically. A missing, unreadable or malformed file is a fresh start (with a warning that
quotes no token); entries that are not an agent's are dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from fleet.errors import FleetError
from fleet.names import AgentName, is_agent_name
from fleet.private_files import write_private

log = logging.getLogger(__name__)

FILE_VERSION: Final = 1
RETIRED_KEPT: Final = 4
"""Revoked tokens kept per agent: still redacted (its old runs' output may show them), and
a refusal of one says its run is over. They open nothing."""


Loaded = tuple[int | None, dict[AgentName, str], dict[AgentName, list[str]]]


def load_secrets(path: Path, what: str) -> Loaded:
    """The saved port, tokens and retired tokens; nothing when the file is missing or
    unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, {}, {}
    except (OSError, ValueError) as exc:
        log.warning(
            "ignoring the unreadable %s state %s (%s): agents still running from before "
            "will be refused until they are restarted",
            what,
            path,
            type(exc).__name__,  # not the message: it may quote the file, tokens and all
        )
        return None, {}, {}
    if not isinstance(data, dict):
        log.warning("ignoring the malformed %s state %s", what, path)
        return None, {}, {}
    port = data.get("port")
    tokens, retired = data.get("tokens"), data.get("retired")
    saved_port = port if type(port) is int and 0 < port <= 65535 else None
    return (
        saved_port,
        _named(tokens, lambda t: isinstance(t, str) and bool(t)),
        {
            name: [t for t in held if isinstance(t, str) and t][-RETIRED_KEPT:]
            for name, held in _named(retired, lambda held: isinstance(held, list)).items()
        },
    )


def _named(found: object, fits: Callable[[Any], bool]) -> dict[AgentName, Any]:
    """The entries of the mapping ``found`` under agents' names whose values fit."""
    if not isinstance(found, dict):
        return {}
    return {AgentName(k): v for k, v in found.items() if is_agent_name(k) and fits(v)}


def save_secrets(
    path: Path,
    what: str,
    port: int | None,
    tokens: Mapping[AgentName, str],
    retired: Mapping[AgentName, list[str]],
) -> None:
    """Replace the state file atomically; it holds secrets, so only its owner may read it.
    Retired tokens are kept under ``retired`` (none: no key)."""
    data: dict[str, object] = {
        "version": FILE_VERSION,
        "port": port,
        "tokens": dict(sorted(tokens.items())),
    }
    if retired:
        data["retired"] = dict(sorted(retired.items()))
    try:
        write_private(path, json.dumps(data, indent=2))
    except OSError as exc:
        raise FleetError(f"cannot save the {what} tokens to {path}: {exc}") from exc
