"""A priced MCP server's calls in the real ``fleetwarden run``, held against the run's cap
before the door relays them: a ``command`` agent spawned with ``--max-usd`` calls a tool
priced per call until its run reaches its cap, and the next call is refused in the door's
words, never relayed; each call relayed is billed, the refused one is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.console_bot import wait_until
from tests.integration.forge_rig import ledger_rows
from tests.integration.mcp.app_rig import held_env, mcp_calls, running_app
from tests.integration.mcp.rig import HttpMcp
from tests.integration.mcp.test_mcp_app_e2e import (
    METRICS_TOKEN,
    _config,
    _door_of_coder,
    _initialize,
    _post,
    sleeping_in,
)
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration


def test_a_run_at_its_cap_has_its_next_priced_call_refused_before_it_is_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """Calls at $0.05 under a $0.08 cap: two are relayed and billed (the second takes the
    run past its cap), the third is refused naming the cap and never reaches the server."""
    (tmp_path / "work").mkdir()
    config = tmp_path / "fleetwarden.yaml"
    _config(config, http_mcp.url, free_port(), granted=True)
    env = held_env(FW_TEST_METRICS_TOKEN=METRICS_TOKEN)
    leave = tmp_path / "work" / "leave"
    with running_app(tmp_path, config, env, leave=leave, leftovers=sleeping_in(tmp_path)) as bot:
        bot.command("spawn coder --max-usd 0.08", r"Agent coder started", timeout=120)
        url, token = _door_of_coder(tmp_path)
        session = _initialize(url, token)
        answers = []
        for n, text in enumerate(("one", "two", "three"), start=1):
            params = {"name": "echo", "arguments": {"text": f"call {text}"}}
            call = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}
            status, _, body = _post(url, token, call, session)
            assert status == 200, body
            answers.append(json.loads(body))
        assert [a["result"]["content"][0]["text"] for a in answers[:2]] == ["call one", "call two"]
        refused = answers[2]["error"]["message"]
        assert "refused" in refused and "run capped at $0.08" in refused, refused
        assert "call three" not in json.dumps(http_mcp.requests())

        def kept() -> list[tuple[object, ...]]:
            return mcp_calls(tmp_path, "outcome, cost_usd")

        assert wait_until(lambda: len(kept()) == 3, 20), kept()
        assert kept() == [("ok", 0.05), ("ok", 0.05), ("refused", None)]
        usage = ledger_rows(tmp_path, "SELECT cost_usd FROM usage WHERE provider = 'mcp'")
        assert usage == [(0.05,), (0.05,)]
        leave.write_text("")
        assert bot.close() == 0, bot.stderr[-3000:]
