"""How a Slack refusal is read (connectors/slack/web.py): its error, and a Retry-After the
pacer can wait on."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from connectors.slack.web import _refused


class Answer(dict[str, Any]):
    """A Web API answer as slack_sdk hands it over: its body, status and headers."""

    def __init__(self, body: dict[str, Any], status: int, headers: dict[str, Any]) -> None:
        super().__init__(body)
        self.status_code = status
        self.headers = headers


@pytest.mark.parametrize("raw", ["nan", "inf", "-5", "soon", ["nan"]])
def test_a_retry_after_that_is_no_wait_is_slacks_default(raw: object) -> None:
    """A Retry-After of nan, inf, a negative or no number is not waited on as said (nan
    would sleep forever): the pacer's default applies."""
    answer = Answer({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": raw})
    refused = _refused("chat.postMessage", SlackApiError("ratelimited", answer))
    assert (refused.error, refused.retry_after) == ("ratelimited", None)


def test_a_retry_after_in_seconds_is_kept() -> None:
    """`Retry-After: 3` is three seconds to wait."""
    answer = Answer({"ok": False, "error": "ratelimited"}, 429, {"retry-after": "3"})
    assert _refused("chat.update", SlackApiError("ratelimited", answer)).retry_after == 3.0
