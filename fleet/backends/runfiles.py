"""Reading and signalling a run, shared by the backends.

Both backends start the agent under :mod:`fleet.backends.agent_shim`, which leads the
agent's process group and records the run in its directory: ``agent.pid`` once the agent
runs, ``exit.json`` when it ends. These helpers read those files and signal the group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

from fleet.model import ExitInfo


def signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to process group ``pgid``; a group that is gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def signal_reason(signum: int) -> str:
    """How a run killed by ``signum`` ended, in words."""
    try:
        return f"killed by {signal.Signals(signum).name}"
    except ValueError:
        return f"killed by signal {signum}"


def read_text(path: Path) -> str:
    """The file's text, stripped; empty if it does not exist (yet) or is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, ValueError):
        return ""


def read_exit(run_dir: Path) -> ExitInfo | None:
    """The shim's record of how the run ended, or ``None`` while there is none."""
    text = read_text(run_dir / "exit.json")
    if not text:
        return None
    try:
        record = json.loads(text)
        code = record.get("exit_code")
        if isinstance(code, int) and code < 0:
            return ExitInfo(code, signal_reason(-code))
        return ExitInfo(code if isinstance(code, int) else None, str(record.get("reason", "")))
    except (ValueError, AttributeError):
        return ExitInfo(None, "exit record unreadable")
