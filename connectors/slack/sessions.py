"""A run's thread as a Slack agent session: its status follows the run.

``agents.sessions.setStatus`` makes the thread's session (titled, at its first call) and
sets its status: a working run is ``processing`` (Slack shows its Stop button), a run
waiting on a person ``suspended``, an idle one ``active``, an ended one ``closed``. Only
apps declared as agents may: a workspace that refuses (the method unknown, not allowed,
a scope missing) turns sessions off for this connector, said once in the log. Nothing here
is ever an error for the caller: a status is cosmetic, the run goes on regardless.
"""

from __future__ import annotations

import logging
from typing import Final

from connectors.base import RunState
from connectors.errors import ConnectorError
from connectors.slack.mrkdwn import escape
from connectors.slack.pacing import Pacer, SlackRefused

log = logging.getLogger(__name__)

STATUS: Final[dict[RunState, str]] = {
    RunState.WORKING: "processing",
    RunState.WAITING: "suspended",
    RunState.IDLE: "active",
    RunState.ENDED: "closed",
}
TITLE_LIMIT: Final = 200
"""Slack's limit on a session's title."""
REFUSALS: Final = frozenset(
    {
        "not_allowed",
        "unknown_method",
        "missing_scope",
        "not_allowed_token_type",
        "method_deprecated",
        "feature_not_enabled",
        "not_an_agent",
        "no_permission",
    }
)
"""Answers meaning this workspace or app has no agent sessions: stop asking."""


def title_of(title: str) -> str:
    """``title`` (anybody's words) on one line, escaped, within :data:`TITLE_LIMIT`."""
    line = " ".join(title.split())
    out = ""
    for char in line:
        piece = escape(char)
        if len(out) + len(piece) > TITLE_LIMIT:
            break
        out += piece
    return out or "Fleetwarden run"


class Sessions:
    """The agent sessions of one connector's threads."""

    def __init__(self, pacer: Pacer, *, enabled: bool) -> None:
        self._pacer = pacer
        self.enabled = enabled

    async def show(self, channel: str, thread: str, state: RunState, title: str) -> None:
        """Set ``thread``'s session to ``state``; never raises."""
        if not self.enabled:
            return
        args = {
            "channel_id": channel,
            "thread_ts": thread,
            "status": STATUS[state],
            "title": title_of(title),
        }
        try:
            await self._pacer.patient("agents.sessions.setStatus", args)
        except SlackRefused as exc:
            if exc.error in REFUSALS:
                self.enabled = False
                log.warning(
                    "slack: this workspace refuses agent sessions (%s); runs are shown "
                    "without them (declare the app as an agent: docs/slack.md)",
                    exc,
                )
            else:
                log.warning("slack: the session of thread %s not set: %s", thread, exc)
        except ConnectorError as exc:
            log.warning("slack: the session of thread %s not set: %s", thread, exc)
        except Exception:
            log.warning("slack: the session of thread %s not set", thread, exc_info=True)
