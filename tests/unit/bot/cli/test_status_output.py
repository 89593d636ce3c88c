"""What ``fleetwarden status`` prints is safe for a terminal whatever the server sent: a
model name's or an issue title's ESC and C1 CSI, a bidi override, markup, a second line
are shown as text, and ``--json`` stays the same JSON with them escaped; the fleet with
its forge runs, one agent in detail, and an unknown name answered."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from bot.cli.parser import command_line
from bot.cli.status.command import EXIT_CONFIG, _no_agent, fleet_text, json_text, main, shown
from bot.cli.status.text import agent_text, standing_text
from bot.config.reading.load import parse_config

HOSTILE = "[x](https://evil.example) **b** \x1b[2J\x1b[31mred\x9b0m \u202eexe.txt\n✅ forged line"


LINKS = [
    {"name": "console", "up": True, "connected": True, "logged_in": True,
     "since": "2026-11-25T09:00:02+00:00", "last_event_at": "2026-11-25T09:41:03+00:00",
     "last_error": None},
    {"name": "matrix", "up": False, "connected": False, "logged_in": True,
     "since": "2026-11-25T09:58:12+00:00", "last_event_at": None,
     "last_error": HOSTILE},
]  # fmt: skip


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


def test_each_connector_has_a_line_and_a_hostile_last_error_stays_on_it_as_text() -> None:
    """Above the agents: one line a connector, up or DOWN since when, and a down one's last
    error (the server's words) with its escapes shown as code points, on its own line."""
    text = fleet_text({**_fleet("m"), "connectors": LINKS})
    assert _controls(text) == []
    lines = text.splitlines()
    assert "console up since 2026-11-25 09:00:02 UTC, last event 2026-11-25 09:41:03 UTC" in lines
    [matrix] = [line for line in lines if line.startswith("matrix")]
    assert matrix.startswith("matrix DOWN since 2026-11-25 09:58:12 UTC; last error: ")
    assert "[U+001B][2J" in matrix and "⏎ ✅ forged line" in matrix
    assert lines.index(matrix) < next(i for i, x in enumerate(lines) if x.startswith("coder-1"))


def test_ps_data_says_the_build_enforce_and_links_as_the_fleet_page_does() -> None:
    """Without a dashboard, ``status`` says ``ps``'s build, ``enforce: strict`` and each
    connector's link in the lines the fleet page's ``status`` has for them, as text."""
    data = {
        "agents": [],
        "build": {"version": "0.2.0", "commit": "1a2b3c4"},
        "enforce": "strict",
        "connectors": LINKS,
    }
    text = standing_text(data)
    assert _controls(text) == []
    paged = fleet_text({**_fleet("m"), **data}).splitlines()
    lines = text.splitlines()
    assert lines[0] == "enforce: strict (no agent unmetered, unsandboxed or open to any host)"
    assert lines[2:4] == [line for line in paged if line.startswith(("console ", "matrix "))]
    assert lines[-1] == "Fleetwarden 0.2.0 (commit 1a2b3c4)" == paged[-1]
    assert standing_text({"agents": [], "enforce": "warn"}) == ""


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


FORGE_RUN = {
    "forge": "github",
    "repo": "app",
    "slug": "acme/app",
    "issue": 12,
    "title": HOSTILE,
    "agent": "coder-1",
    "branch": "fw/coder-1/issue-12",
    "state": "working",
    "pull": 18,
}


def test_the_fleet_lists_its_forge_runs_with_their_hostile_titles_as_text() -> None:
    """Each forge run is a row: the issue, its agent, its state, its pull request, and the
    title — whose escapes, bidi override, markup and second line are text on that row."""
    text = fleet_text({**_fleet("m"), "forge_runs": [FORGE_RUN]})
    assert _controls(text) == []
    assert "1 forge run:" in text
    [row] = [line for line in text.splitlines() if line.startswith("acme/app#12")]
    assert row.split()[1:4] == ["coder-1", "working", "#18"]
    assert "[U+001B][2J[U+001B][31mred[U+009B]0m [U+202E]exe.txt ⏎ ✅ forged line" in row
    assert "forge run" not in fleet_text(_fleet("m"))  # none: no section


def test_one_agent_in_detail_shows_its_facts_branch_forge_run_and_runs_as_text() -> None:
    """`status NAME`: the agent's state, runtime, model, use, problems, branch, forge runs
    and last runs, every text the server sent shown as text."""
    agent = {
        **_fleet(HOSTILE)["agents"][0],  # type: ignore[index]
        "reason": "pid 4242",
        "pid": 4242,
        "runtime": "claude",
        "backend": "tmux",
        "started_at": "2026-11-25T09:00:00.123456+00:00",
    }
    change = {
        "error": None,
        "repo": "app",
        "branch": "fw/coder-1/3",
        "base_ref": "main",
        "commits": [{"sha": "a", "subject": HOSTILE}],
        "more_commits": 0,
        "files": [{}, {}],
        "more_files": 0,
        "added": 10,
        "removed": 2,
        "pushed": True,
        "merged": False,
    }
    runs = [{"run_id": 3, "runtime": "claude", "requests": 4, "tokens": 12345, "cost_usd": 0.5}]
    text = agent_text({"agent": agent, "change": change, "runs": runs}, [FORGE_RUN])
    assert _controls(text) == []
    lines = text.splitlines()
    assert lines[0] == "coder-1 on local"
    assert "  state      running (pid 4242)" in lines
    assert "  runtime    claude (tmux backend)" in lines
    assert "  started    2026-11-25 09:00:00 UTC" in lines
    assert "  branch     fw/coder-1/3 on app (base main), 1 commit, 2 files +10 −2, pushed" in lines
    assert any(
        line.startswith("  forge run  acme/app#12 working, pull request #18: ") for line in lines
    )
    [model] = [line for line in lines if line.startswith("  model ")]
    assert "[x](https://evil.example) **b** [U+001B][2J[U+001B][31mred" in model
    assert lines[-1].split() == ["3", "claude", "4", "12.3k", "$0.50"]


def test_an_unknown_name_is_answered_with_the_likely_one_or_the_names_there_are() -> None:
    """A typo gets "did you mean"; a name close to none gets the fleet's names (a few);
    an empty fleet says so."""
    assert _no_agent("codr-1", ["coder-1", "coder-2"]).startswith(
        "no agent is called 'codr-1' — did you mean 'coder-1'?"
    )
    assert _no_agent("zz", ["a", "b"]) == "no agent is called 'zz': the fleet has 'a', 'b'"
    many = [f"agent-{n}" for n in range(12)]
    assert _no_agent("zz", many).endswith("'agent-7', …")
    assert _no_agent("zz", []) == "no agent is called 'zz': the fleet has no agents yet"


def test_status_name_is_an_agent_and_a_name_after_another_word_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`fleetwarden status coder-1` parses (it names an agent); `status coder-1 x` is
    refused with what `status NAME` is, exit 2, before anything is asked."""
    args = command_line().parse_args(["status", "coder-1"])
    assert (args.what, args.name) == ("coder-1", None)
    config = parse_config("", "f.yaml", base_dir=tmp_path)
    assert main(command_line().parse_args(["status", "coder-1", "x"]), config, {}) == EXIT_CONFIG
    assert "`status NAME` shows one agent" in capsys.readouterr().err
