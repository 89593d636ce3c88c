"""What the pinned opencode cannot do, pinned: ``opencode run`` rejects a native ask by
itself and never calls a plugin's ``permission.ask`` hook — so Fleetwarden's gate is a
``tool.execute.before`` hook and opencode's own rules never say ``ask``
(:mod:`fleet.runtimes.gates`). Should a new opencode call the hook, this fails."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn
from tests.integration.runtimes.test_real_clis import API_KEY, REPLY, clean_env, cli, run_cli

PLUGIN = """\
import fs from "node:fs";
export const Probe = async () => ({
  "tool.execute.before": async (input) => {
    fs.writeFileSync(process.env.PROBE_MARK + ".before", input.tool);
  },
  "permission.ask": async (input, output) => {
    fs.writeFileSync(process.env.PROBE_MARK, JSON.stringify(input));
    output.status = "allow";
  },
});
"""


async def test_opencode_run_rejects_an_ask_without_asking_a_plugin(tmp_path: Path) -> None:
    """A bash call under ``permission: {bash: ask}``: the plugin is loaded (its
    ``tool.execute.before`` runs) but its ``permission.ask`` never does; ``opencode run``
    rejects the ask itself and the command does not run."""
    cli("opencode")
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "tmp").mkdir(parents=True)
    work.mkdir()
    plugin = tmp_path / "probe.mjs"
    plugin.write_text(PLUGIN)
    mark = tmp_path / "asked.json"
    command = {"command": "echo made > made.txt", "description": "write a file"}
    async with FakeProvider(
        Turn(text="", tool=ToolCall("bash", command)),
        default=Turn(text=REPLY),
        accept=Accepted(api_keys=frozenset({API_KEY})),
    ) as fake:
        config = {
            "model": "anthropic/claude-sonnet-4-5",
            "provider": {
                "anthropic": {"options": {"baseURL": f"{fake.base_url}/v1", "apiKey": API_KEY}}
            },
            "agent": {"title": {"disable": True}},
            "autoupdate": False,
            "share": "disabled",
            "plugin": [plugin.as_uri()],
            "permission": {"bash": "ask"},
        }
        env = clean_env(
            home,
            {
                "OPENCODE_CONFIG_CONTENT": json.dumps(config),
                "OPENCODE_DISABLE_MODELS_FETCH": "1",
                "OPENCODE_DISABLE_AUTOUPDATE": "1",
                "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
                "OPENCODE_DISABLE_PROJECT_CONFIG": "1",
                "PROBE_MARK": str(mark),
            },
        )
        run = await run_cli([cli("opencode"), "run", "--", "make the file"], work, env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "auto-rejecting" in run.stdout + run.stderr
    assert mark.with_name("asked.json.before").read_text() == "bash"
    assert not mark.exists(), mark.read_text()
    assert not (work / "made.txt").exists()
