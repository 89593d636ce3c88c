"""In the real ``fleetwarden run``, a ``command`` agent granted an MCP server and given a
skill finds both where its launch put them: it reads ``$HOME/.fleetwarden/mcp.json`` and
calls the server's tool with plain HTTP through the app's door (the server seeing only the
credential Fleetwarden holds), and its skill is in ``$HOME/.fleetwarden/skills``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.console_bot import wait_until
from tests.integration.mcp.app_rig import CONSOLE_HEAD, TRACKER, agent_log, held_env, running_app
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, HttpMcp
from tests.integration.mcp.test_mcp_launch_clis import SCRIPT

pytestmark = pytest.mark.integration

# The script prints the tool's answer, then the skill's first line, then waits to be stopped.
AGENT = (
    SCRIPT
    + """\
import time
skill = os.path.join(os.environ["HOME"], ".fleetwarden", "skills", "triage", "SKILL.md")
print("SKILL " + open(skill).read().splitlines()[1], flush=True)
while not os.path.exists("leave"):
    time.sleep(0.05)
"""
)
CONFIG = (
    CONSOLE_HEAD
    + TRACKER
    + """\
agents:
  - name: coder
    runtime: command
    argv: [python3, agent.py, tracker]
    workdir: ./work
    mcp: [tracker]
    allow: [mcp__tracker__echo]  # else the door asks in chat first
    skills: [{skill}]
"""
)


def _log(root: Path) -> str:
    return agent_log(root, "coder")


def test_a_command_agent_calls_a_tool_from_the_mcp_json_its_launch_wrote(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """The agent's own tools/call, made from $HOME/.fleetwarden/mcp.json alone, is answered
    through the app's door; the server saw the held credential; the skill was copied."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "agent.py").write_text(AGENT)
    skill = tmp_path / "operator-skills" / "triage"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: triage\ndescription: sort the issues\n---\n")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(url=http_mcp.url, credential_env=CREDENTIAL_ENV, skill=skill))
    with running_app(tmp_path, config, held_env(), leave=work / "leave") as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        assert wait_until(lambda: "SKILL name: triage" in _log(tmp_path), 60), _log(tmp_path)
        assert "hello from a script" in _log(tmp_path)
        seen = http_mcp.authorizations()
        assert seen and set(seen) == {f"Bearer {CREDENTIAL}"}
        (work / "leave").write_text("")
        assert bot.close() == 0, bot.stderr[-3000:]
        assert CREDENTIAL not in bot.stdout + bot.stderr + _log(tmp_path)


# Prints the skills its CLI folder holds, then plants one of its own there and ends.
LISTER = """\
import json, os
skills = os.path.join(os.environ["HOME"], ".fleetwarden", "skills")
found = sorted(os.listdir(skills)) if os.path.isdir(skills) else []
print("SKILLS " + json.dumps(found), flush=True)
planted = os.path.join(skills, "planted")
os.makedirs(planted, exist_ok=True)
with open(os.path.join(planted, "SKILL.md"), "w") as file:
    file.write("---\\nname: planted\\ndescription: obey the agent\\n---\\n")
"""
SKILLED = (
    CONSOLE_HEAD
    + """\
agents:
  - name: coder
    runtime: command
    argv: [python3, lister.py]
    workdir: ./work
    {skills}
"""
)


def test_a_skill_taken_out_of_the_config_or_planted_by_the_agent_is_gone_at_the_next_launch(
    tmp_path: Path,
) -> None:
    """The agent's skills folder holds what the config gives at each launch: after a run
    that had ``triage`` and planted a skill of its own, a reload without ``skills:`` and a
    new spawn find the folder empty."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "lister.py").write_text(LISTER)
    skill = tmp_path / "operator-skills" / "triage"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: triage\ndescription: sort the issues\n---\n")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(SKILLED.format(skills=f"skills: [{skill}]"))
    folder = tmp_path / "state" / "agents" / "coder" / "home" / ".fleetwarden" / "skills"
    with running_app(tmp_path, config, held_env()) as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        assert wait_until(lambda: (folder / "planted" / "SKILL.md").exists(), 60), _log(tmp_path)
        assert 'SKILLS ["triage"]' in _log(tmp_path)
        assert wait_until(lambda: "coder" in bot.stdout and "finished" in bot.stdout, 60)
        config.write_text(SKILLED.format(skills=""))
        bot.command("roster reload", r"(?i)reload", timeout=60)
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        assert wait_until(lambda: "SKILLS []" in _log(tmp_path), 60), _log(tmp_path)
        assert bot.close() == 0, bot.stderr[-3000:]
