"""``fleetwarden check-config`` with MCP servers and skills, the real command: a sound
config says each server, where its credential comes from (the variable, never its value)
and who may use it; a credential missing from the environment, a server's variable in an
agent's ``secret_env``, a wrong skill and a pi agent granted a server each exit 2 with the
file, the line and the fix — the value of no credential anywhere in the output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

SECRET = "Bearer mcp-credential-0123456789abcdef"
CONFIG = """\
state_dir: ./state
mcp:
  tracker:
    url: https://mcp.tracker.example.com/mcp
    headers_env: {Authorization: TRACKER_AUTH}
    tools: [search_issues, get_issue]
  everything:
    command: npx
    args: [-y, "@modelcontextprotocol/server-everything"]
agents:
  - name: coder
    mcp:
      tracker: {tools: [get_issue]}
      everything: {}
    skills: [skills/notes]
"""


def check(tmp_path: Path, text: str, **env: str) -> subprocess.CompletedProcess[str]:
    notes = tmp_path / "skills" / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "SKILL.md").write_text("---\nname: notes\ndescription: Takes notes.\n---\nBody.\n")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(text)
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config)],
        env=clean_env(**env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_sound_config_says_each_server_and_never_its_credential(tmp_path: Path) -> None:
    """OK, with one line per server: how it is reached, the credential's variable, its
    allow-list and its agents."""
    done = check(tmp_path, CONFIG, TRACKER_AUTH=SECRET)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        "  mcp:        tracker: HTTP https://mcp.tracker.example.com/mcp; credential from "
        "$TRACKER_AUTH; tools: search_issues, get_issue; agents: coder"
    ) in lines
    assert "  mcp:        everything: stdio npx; no credential; every tool; agents: coder" in lines
    assert SECRET not in done.stdout + done.stderr


def test_each_mistake_exits_2_on_its_line_without_the_credential(tmp_path: Path) -> None:
    """The credential unset; then a skill named for another folder, a pi agent granted a
    server no section defines and holding the credential's variable: each said at its line
    with its fix."""
    unset = check(tmp_path, CONFIG)
    assert unset.returncode == 2
    assert (
        "fleetwarden.yaml:5: mcp.tracker.headers_env.Authorization: environment variable "
        "TRACKER_AUTH is not set"
    ) in unset.stderr
    wrong = CONFIG + (
        "  - name: helper\n    runtime: pi\n    mcp: [trackr]\n    secret_env: [TRACKER_AUTH]\n"
    )
    (tmp_path / "skills" / "other").mkdir(parents=True)
    (tmp_path / "skills" / "other" / "SKILL.md").write_text("---\nname: notes\n---\n")
    wrong = wrong.replace("skills: [skills/notes]", "skills: [skills/other]")
    done = check(tmp_path, wrong, TRACKER_AUTH=SECRET)
    assert done.returncode == 2
    said = done.stderr
    assert "fleetwarden.yaml:15: agents[0].skills[0]: " in said
    assert "skills/other/SKILL.md:2: the `name` in SKILL.md differs from the folder's" in said
    assert "fleetwarden.yaml:18: agents[1].mcp[0]: MCP server 'trackr' is not defined" in said
    assert "did you mean 'tracker'?" in said
    assert "fleetwarden.yaml:18: agents[1].mcp: agent 'helper' runs pi, which cannot" in said
    assert "fleetwarden.yaml:19: agents[1].secret_env[0]: agent 'helper' would get" in said
    assert SECRET not in done.stdout + said
