"""Which session a resumed launch continues: only one the agent's last run wrote."""

from __future__ import annotations

import json

from fleet.runs.resuming import last_run
from fleet.runtimes import default_registry


def said(session: str) -> str:
    return json.dumps({"type": "system", "subtype": "init", "session_id": session})


def test_only_the_last_runs_session_is_continued() -> None:
    """An earlier run's session (another task's) is never the one resumed: a last run that
    wrote none starts afresh; one that wrote its own continues it."""
    claude = default_registry().get("claude")
    earlier = ["--- fleetwarden: coder starting (claude) ---", said("other-task-session")]
    died = [*earlier, "--- fleetwarden: coder starting (claude) ---", "crashed at start"]
    assert claude.session_id("\n".join(died)) == "other-task-session"  # the log as a whole
    assert claude.session_id("\n".join(last_run(died))) is None
    own = [*died[:-1], said("this-task-session")]
    assert claude.session_id("\n".join(last_run(own))) == "this-task-session"


def test_a_tail_past_the_last_marker_is_all_the_last_runs() -> None:
    """With the last run's marker before the lines read, every line read is its own."""
    assert last_run(["a", "b"]) == ["a", "b"]
