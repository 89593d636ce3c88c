"""The app's redactor knows the MCP servers' held credentials: each whole value under its
variable's name, and a ``Bearer`` header's token alone under the same name."""

from __future__ import annotations

from bot.app.assembly import redactor
from tests.unit.bot.config.test_config import parse

TOKEN = "trk_" + "Zq81Lm02Xc93Vb47Nn56Aa"
CONFIG = """\
mcp:
  tracker:
    url: http://127.0.0.1:9/mcp
    headers_env: {Authorization: TRACKER_AUTH}
"""


def test_a_held_bearer_token_is_redacted_whole_and_alone() -> None:
    """``Bearer T`` and ``T`` alone are both redacted as TRACKER_AUTH."""
    redact = redactor(parse(CONFIG), {"TRACKER_AUTH": f"Bearer {TOKEN}"}).redact
    assert redact(f"sent Bearer {TOKEN}") == "sent [redacted: TRACKER_AUTH]"
    assert redact(f"echoed {TOKEN} back") == "echoed [redacted: TRACKER_AUTH] back"
