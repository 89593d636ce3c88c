"""docs/mcp.md's walk as a new user follows it, through the real `fleetwarden run`: its
config and its agent's script as the guide writes them (only the server's command is the
installed server-everything, not `npx`, and the dashboard's port a free one), the two
calls approved at the console, and step 4's dashboard there: `dashboard` answers a sign-in
link, and `fleetwarden status agent toolsmith --json` lists the calls under `mcp_calls`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import sandbox_need
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env
from tests.integration.dashboard_rig import LINK
from tests.integration.mcp.rig import everything_bin
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "mcp.md"
STARTUP = 90.0
TOKEN = "demo-secret-4f9a1c77e2"


def _block(text: str, after: str, kind: str) -> str:
    """The first ``kind`` fenced block of the guide after the words ``after``."""
    start = text.index(after)
    found = re.compile(rf"```{kind}\n(.*?)```", re.S).search(text, start)
    assert found is not None, f"no {kind} block after {after!r}"
    return found.group(1)


def test_the_guides_walk_ends_on_the_dashboard_its_config_enables(tmp_path: Path) -> None:
    """The guide's config serves the dashboard step 4 sends the user to: `dashboard` answers
    a link, and status shows both approved calls as the agent page's MCP calls."""
    text = GUIDE.read_text(encoding="utf-8")
    config = yaml.safe_load(_block(text, "Write `mcp-demo/fleetwarden.yaml`", "yaml"))
    assert config["dashboard"]["listen"] == "127.0.0.1:8750"
    port = free_port()
    config["dashboard"]["listen"] = f"127.0.0.1:{port}"
    config["mcp"]["everything"]["command"] = everything_bin()
    config["mcp"]["everything"]["args"] = []
    demo = tmp_path / "mcp-demo"
    (demo / "work").mkdir(parents=True)
    (demo / "fleetwarden.yaml").write_text(yaml.safe_dump(config))
    (demo / "work" / "call.py").write_text(_block(text, "`mcp-demo/work/call.py`", "python"))
    env = clean_env(MCP_DEMO_TOKEN=TOKEN)
    path = str(demo / "fleetwarden.yaml")
    with ConsoleBot(tmp_path, "--config", path, env=env) as bot:
        for tool, shown in (
            ("echo", "echo → Echo: hello through the door"),
            ("get-env", '"DEMO_TOKEN": "[redacted: MCP credential MCP_DEMO_TOKEN]"'),
        ):
            if tool == "echo":
                bot.send("spawn toolsmith")
            asked = bot.expect(
                rf"Approval (\w+) — toolsmith asks to use mcp__everything__{tool}", STARTUP
            )
            bot.command(f"approve {asked.group(1)}", re.escape(shown), STARTUP)
        bot.command("dashboard", LINK.pattern.replace(r":\d+", f":{port}"))
        status = subprocess.run(
            [str(FLEETWARDEN), "status", "agent", "toolsmith", "--json", "--config", path],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        calls = json.loads(status.stdout)["mcp_calls"]
        assert sorted(c["name"] for c in calls) == ["echo", "get-env"], calls
        assert all(c["outcome"] == "ok" for c in calls), calls
        bot.command("stop toolsmith", "Stopped toolsmith", STARTUP)
        assert bot.quit() == 0, bot.stderr
    assert TOKEN not in bot.stdout + bot.stderr + status.stdout
