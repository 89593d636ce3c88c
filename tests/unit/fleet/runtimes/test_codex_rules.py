"""An agent's allow and deny rules as Codex's execpolicy rules, its heartbeat hooks, and
where they are written."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, PermissionMode
from fleet.names import AgentName
from fleet.runtimes import RuntimeContext
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.codex_hooks import ASK_ALL, ASK_DIGESTS, ASK_SHELL, HOOKS, ask_command
from fleet.runtimes.codex_rules import execpolicy


def test_deny_rules_of_plain_words_become_forbidden_prefix_rules() -> None:
    """Deny rules, exact or not, forbid their prefix with the rule as the justification;
    allow rules are never written (Codex would run a compound line its own way, unasked)."""
    rules = execpolicy(("Bash(git *)", "Bash(npm run test *)"), ("Bash(rm -rf /)", "Bash(curl *)"))
    assert rules == (
        'prefix_rule(pattern=["rm", "-rf", "/"], decision="forbidden", '
        'justification="the agent\'s rule Bash(rm -rf /) denies it")\n'
        'prefix_rule(pattern=["curl"], decision="forbidden", '
        'justification="the agent\'s rule Bash(curl *) denies it")\n'
    )


def test_rules_a_prefix_cannot_say_stay_fleetwardens() -> None:
    """Allow rules of every shape, a ``*`` inside a word, quotes, edits and malformed rules
    are not written."""
    allow = ("Bash(git *)", "Bash(npm test)", "Bash(git*)", 'Bash(echo "x" *)', "Edit", "Bash(*)")
    assert execpolicy(allow, ("Edit(src/*)", "Write", "Bash(", "Bash(git*)")) is None


def test_the_rules_file_is_written_in_codex_home(tmp_path: Path) -> None:
    """The runtime writes the rules into ``$CODEX_HOME/rules`` only when there are some."""
    ctx = RuntimeContext(home=tmp_path, workdir=tmp_path, environ={})
    spec = AgentSpec(AgentName("cx"), runtime="codex", prompt="hi", deny=("Bash(curl *)",))
    files = CodexRuntime().plan(spec, ctx).files
    assert "curl" in files[tmp_path / ".codex" / "rules" / "fleetwarden.rules"]
    bare = CodexRuntime().plan(AgentSpec(AgentName("cx"), runtime="codex", prompt="hi"), ctx)
    assert list(bare.files) == [tmp_path / ".codex" / "config.toml"]


def test_heartbeat_hooks_are_written_and_trusted_where_no_session_reports(tmp_path: Path) -> None:
    """A TUI or a follow-up gets hooks.json posting heartbeats and config.toml trusting each
    hook under its key; a live session gets none (its protocol is its heartbeat)."""
    ctx = RuntimeContext(
        home=tmp_path,
        workdir=tmp_path,
        environ={},
        heartbeat_url="http://127.0.0.1:9/heartbeat/cx",
        heartbeat_token="t" * 24,
    )
    # ``full``: the TUI's hooks only beat (what it asks in other modes: the test below)
    spec = AgentSpec(AgentName("cx"), runtime="codex", prompt="hi", permissions=PermissionMode.FULL)
    codex_home = tmp_path / ".codex"
    for plan in (
        CodexRuntime().plan(spec, replace(ctx, tty=True)),
        CodexRuntime().follow_up(spec, ctx, None, "more"),
    ):
        assert plan is not None
        hooks = json.loads(plan.files[codex_home / "hooks.json"])["hooks"]
        assert set(hooks) == set(HOOKS)
        assert "heartbeat" not in json.dumps(hooks)  # the URL comes from the environment
        state = tomllib.loads(plan.files[codex_home / "config.toml"])["hooks"]["state"]
        assert state == {
            f"{codex_home}/hooks.json:{label}:0:0": {"trusted_hash": digest}
            for label, _, digest in HOOKS.values()
        }
        assert plan.env["FLEETWARDEN_HEARTBEAT_URL"] == "http://127.0.0.1:9/heartbeat/cx"
    live = CodexRuntime().plan(spec, ctx)
    assert codex_home / "hooks.json" not in live.files
    bad = replace(ctx, tty=True, heartbeat_url="http://example.com/heartbeat")
    with pytest.raises(LaunchFailed, match="heartbeat URL"):
        CodexRuntime().plan(spec, bad)


@pytest.mark.parametrize(
    ("mode", "matcher"),
    [(PermissionMode.ASK, None), (PermissionMode.EDITS, ASK_SHELL), (PermissionMode.FULL, "-")],
)
def test_the_tui_asks_through_its_pre_tool_use_hook_by_mode(
    mode: PermissionMode, matcher: str | None, tmp_path: Path
) -> None:
    """Codex's TUI asks in chat before every call (``ask``), before shell commands
    (``edits``), or not at all (``full``: the PreToolUse hook only beats)."""
    ctx = RuntimeContext(
        home=tmp_path,
        workdir=tmp_path,
        environ={},
        tty=True,
        heartbeat_url="http://127.0.0.1:9/heartbeat/cx",
        heartbeat_token="t" * 24,
    )
    spec = AgentSpec(AgentName("cx"), runtime="codex", permissions=mode, approval_timeout=600)
    plan = CodexRuntime().plan(spec, ctx)
    codex_home = tmp_path / ".codex"
    (group,) = json.loads(plan.files[codex_home / "hooks.json"])["hooks"]["PreToolUse"]
    state = tomllib.loads(plan.files[codex_home / "config.toml"])["hooks"]["state"]
    digest = state[f"{codex_home}/hooks.json:pre_tool_use:0:0"]["trusted_hash"]
    if mode is PermissionMode.FULL:
        assert "FLEETWARDEN_ASK_URL" not in plan.env and digest == HOOKS["PreToolUse"][2]
        return
    assert group.get("matcher") == matcher
    assert group["hooks"][0]["command"] == ask_command()
    assert digest == ASK_DIGESTS[ASK_ALL if matcher is None else ASK_SHELL]
    assert plan.env["FLEETWARDEN_ASK_URL"] == "http://127.0.0.1:9/ask/cx"
    assert plan.env["FLEETWARDEN_ASK_WAIT"] == "660"
