"""What ``fleetwarden status`` prints is safe for a terminal whatever the server sent: a
model name's ESC and C1 CSI, a bidi override, markup, a second line are shown as text,
and ``--json`` stays the same JSON with them escaped."""

from __future__ import annotations

import json
import unicodedata

import pytest

from bot.cli.status import fleet_text, json_text, shown

HOSTILE = "[x](https://evil.example) **b** \x1b[2J\x1b[31mred\x9b0m \u202eexe.txt\n✅ forged line"


def _fleet(model: str) -> dict[str, object]:
    return {
        "totals": {"agents": 1, "with_problems": 1, "tokens_today": 10, "cost_today_usd": 1.5},
        "agents": [
            {
                "name": "coder-1",
                "host": "local",
                "state": "running",
                "heartbeat_age_seconds": 2.0,
                "model": model,
                "tokens_today": 10,
                "cost_today_usd": 1.5,
                "problems": [f"failed: {model}"],
            }
        ],
    }


def _controls(text: str) -> list[str]:
    return [c for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf")]


def test_a_hostile_model_name_reaches_the_table_as_text() -> None:
    """No escape sequence, C1 control or bidi override reaches the terminal: each shows as
    its code point; markup stays as written; the second line stays on the agent's row."""
    text = fleet_text(_fleet(HOSTILE))
    assert _controls(text) == []
    row = next(line for line in text.splitlines() if line.startswith("coder-1"))
    assert "[U+001B][2J[U+001B][31mred[U+009B]0m [U+202E]exe.txt ⏎ ✅ forged line" in row
    assert "[x](https://evil.example) **b**" in row
    assert not any(line.lstrip().startswith("✅") for line in text.splitlines())


def test_json_output_is_the_same_json_with_hidden_characters_escaped() -> None:
    """`--json` escapes every control and format character (past the BMP as a surrogate
    pair), so the text is safe and parses back to exactly what the server sent."""
    data = _fleet(HOSTILE + "\x7f\U000e0041\x85")
    text = json_text(data)
    assert _controls(text) == []
    assert "\\u009b" in text and "\\u202e" in text and "\\udb40\\udc41" in text
    assert json.loads(text) == data
    assert json_text({"a": "café ✅"}) == json.dumps({"a": "café ✅"}, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("said", ["\x1b]0;owned\x07", "\x9b31m", "\u202e", "\x00"])
def test_an_error_the_server_sent_is_shown_as_text(said: str) -> None:
    """The one line of an error (it may quote the server's answer) drives no terminal."""
    assert _controls(shown(f"fleetwarden status: answered 500: {said}")) == []
