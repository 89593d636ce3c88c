"""Tests for the real agent runtimes (claude, codex, pi, opencode, command): what they plan.

The JSON samples are real output of the pinned CLIs against tests/fakes/provider/server.py,
trimmed to the fields that matter.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from fleet.connections.token import TOKEN_HEADER
from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, LaunchPlan, PermissionMode
from fleet.names import AgentName
from fleet.runtimes import Runtime, RuntimeContext, default_registry
from fleet.runtimes.claude import (
    CONTEXT_ENV,
    EDITS_ASK,
    OWN_SETTINGS,
    READ_ONLY_DENY,
    ClaudeRuntime,
    heartbeat_command,
)
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.gates import OPENCODE_PLUGIN, PI_EXTENSION
from fleet.runtimes.opencode import OpencodeRuntime
from fleet.runtimes.pi import PiRuntime

ANTHROPIC_KEY = "fake-anthropic-secret-value-1234"
OPENAI_KEY = "sk-openai-secret-value-5678"
HB_TOKEN = "hb-token-AbCdEfGhIjKlMnOpQrStUv"
HB_URL = "http://127.0.0.1:41234/heartbeat/coder-1"
ANTHROPIC_URL = "http://127.0.0.1:8800/run/coder-1"
OPENAI_URL = "http://127.0.0.1:8800/run/coder-1"
NAME = AgentName("coder-1")

CLAUDE_OUT = """\
{"type":"system","subtype":"init","cwd":"/tmp/w","session_id":"e5fa5e8d-a4aa-4c36-9ddd-d50cca6b2807","model":"claude-opus-4-8[1m]"}
{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"fleetwarden-ok"}]},"session_id":"e5fa5e8d-a4aa-4c36-9ddd-d50cca6b2807"}
{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"fleetwarden-ok","session_id":"e5fa5e8d-a4aa-4c36-9ddd-d50cca6b2807"}
"""
CODEX_OUT = """\
Reading additional input from stdin...
{"type":"thread.started","thread_id":"01a20379-9caa-7bb0-bb56-fe7db1a87028"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"fleetwarden-ok"}}
{"type":"turn.completed","usage":{"input_tokens":12,"cached_input_tokens":0,"output_tokens":3}}
"""
PI_OUT = """\
{"type":"session","version":3,"id":"01a20379-ecd3-7296-a13b-e21b315607ae","timestamp":"2026-11-22T13:37:31.861Z","cwd":"/tmp/w"}
{"type":"agent_start"}
{"type":"turn_start"}
{"type":"message_end","message":{"role":"assistant","content":[{"type":"text","text":"fleetwarden-ok"}]}}
{"type":"agent_end","messages":[]}
"""
OPENCODE_OUT = """\
{"type":"step_start","timestamp":1795354981277,"sessionID":"ses_dfc811330ffeSmYC7dci23UdCp","part":{"type":"step-start"}}
{"type":"text","timestamp":1795354981278,"sessionID":"ses_dfc811330ffeSmYC7dci23UdCp","part":{"type":"text","text":"fleetwarden-ok"}}
{"type":"step_finish","timestamp":1795354981278,"sessionID":"ses_dfc811330ffeSmYC7dci23UdCp","part":{"type":"step-finish","reason":"stop"}}
"""

CLI_RUNTIMES: list[Runtime] = [ClaudeRuntime(), CodexRuntime(), PiRuntime(), OpencodeRuntime()]
SAMPLES = {"claude": CLAUDE_OUT, "codex": CODEX_OUT, "pi": PI_OUT, "opencode": OPENCODE_OUT}
SESSIONS = {
    "claude": "e5fa5e8d-a4aa-4c36-9ddd-d50cca6b2807",
    "codex": "01a20379-9caa-7bb0-bb56-fe7db1a87028",
    "pi": "01a20379-ecd3-7296-a13b-e21b315607ae",
    "opencode": "ses_dfc811330ffeSmYC7dci23UdCp",
}


def spec(runtime: str, **kwargs: object) -> AgentSpec:
    fields: dict[str, object] = {"prompt": "fix the bug", "secret_env": ("ANTHROPIC_API_KEY",)}
    fields.update(kwargs)
    return AgentSpec(name=NAME, runtime=runtime, **fields)  # type: ignore[arg-type]


@pytest.fixture
def ctx(tmp_path: Path) -> RuntimeContext:
    return RuntimeContext(
        home=tmp_path / "home",
        workdir=tmp_path / "work",
        environ={
            "PATH": "/usr/bin:/bin",
            "HOME": "/root",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "OPENAI_API_KEY": OPENAI_KEY,
            "AWS_SECRET_ACCESS_KEY": "not-for-agents",
        },
    )


def with_(ctx: RuntimeContext, **kwargs: object) -> RuntimeContext:
    fields = {
        "home": ctx.home,
        "workdir": ctx.workdir,
        "environ": ctx.environ,
        "tty": ctx.tty,
        "provider_urls": ctx.provider_urls,
        "heartbeat_url": ctx.heartbeat_url,
        "heartbeat_token": ctx.heartbeat_token,
    }
    fields.update(kwargs)
    return RuntimeContext(**fields)  # type: ignore[arg-type]


def full(ctx: RuntimeContext) -> RuntimeContext:
    """Every optional part of the context set: provider URLs and a heartbeat."""
    urls = {"anthropic": ANTHROPIC_URL, "openai": OPENAI_URL}
    return with_(ctx, provider_urls=urls, heartbeat_url=HB_URL, heartbeat_token=HB_TOKEN)


def all_plans(runtime: Runtime, ctx: RuntimeContext) -> list[LaunchPlan]:
    """Every plan a runtime makes for one spec: headless, tty, and both follow-ups."""
    agent = spec(runtime.name, model="sonnet", secret_env=("ANTHROPIC_API_KEY", "OPENAI_API_KEY"))
    plans = [runtime.plan(agent, ctx), runtime.plan(agent, with_(ctx, tty=True))]
    for session in (SESSIONS[runtime.name], None):
        plan = runtime.follow_up(agent, ctx, session, "and the tests")
        assert plan is not None
        plans.append(plan)
    return plans


# -- contract: every CLI runtime ---------------------------------------------------------


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
def test_secrets_only_in_env(runtime: Runtime, ctx: RuntimeContext) -> None:
    """API keys and the heartbeat token never appear in an argv or a config file."""
    for plan in all_plans(runtime, full(ctx)):
        text = "\n".join([*plan.argv, *plan.files.values()])
        for secret in (ANTHROPIC_KEY, OPENAI_KEY, HB_TOKEN):
            assert secret not in text
        assert plan.env["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
        assert plan.env["OPENAI_API_KEY"] == OPENAI_KEY


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
def test_private_home_and_no_leaks(runtime: Runtime, ctx: RuntimeContext) -> None:
    """Config files sit inside ctx.home; HOME is the agent's; unnamed variables stay behind."""
    for plan in all_plans(runtime, full(ctx)):
        assert plan.cwd == ctx.workdir
        assert plan.env["HOME"] == str(ctx.home)
        assert "AWS_SECRET_ACCESS_KEY" not in plan.env
        for path in plan.files:
            assert path.is_relative_to(ctx.home), path


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
def test_unnamed_secret_is_not_passed(runtime: Runtime, ctx: RuntimeContext) -> None:
    """A key the spec does not list in secret_env is not given to the agent."""
    plan = runtime.plan(spec(runtime.name, secret_env=()), ctx)
    assert "ANTHROPIC_API_KEY" not in plan.env
    assert "OPENAI_API_KEY" not in plan.env


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
@pytest.mark.parametrize("prompt", ["--help", "-v", "@/etc/passwd", "exec", "--model=x"])
def test_prompt_is_never_a_flag(runtime: Runtime, ctx: RuntimeContext, prompt: str) -> None:
    """A prompt that looks like a flag, file or subcommand is passed as the message."""
    plan = runtime.plan(spec(runtime.name, prompt=prompt), ctx)
    follow = runtime.follow_up(spec(runtime.name), ctx, None, prompt)
    assert follow is not None
    for made, argv in ((plan, plan.argv), (follow, follow.argv)):
        if made.session is not None:  # a live session: the prompt is a turn on its stdin
            assert made.prompt == prompt
            assert prompt not in argv
        elif "--" in argv:  # everything after "--" is an operand
            assert argv[-1] == prompt
            assert argv.index("--") < len(argv) - 1
        elif prompt.startswith(("-", "@")):  # pi has no "--": such a message gets a space
            assert prompt not in argv
            assert f" {prompt}" in argv
        else:
            assert prompt in argv


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
@pytest.mark.parametrize("model", ["--dangerously-skip-permissions", "-x", "a b", ""])
def test_model_must_be_a_name(runtime: Runtime, ctx: RuntimeContext, model: str) -> None:
    """A model that is not a plain name (e.g. reads as a flag) is refused."""
    with pytest.raises(LaunchFailed, match="not a model name"):
        runtime.plan(spec(runtime.name, model=model), ctx)


@pytest.mark.parametrize(
    "runtime", [r for r in CLI_RUNTIMES if r.name not in ("claude", "pi")], ids=lambda r: r.name
)
def test_headless_needs_a_prompt(runtime: Runtime, ctx: RuntimeContext) -> None:
    """A headless run without a prompt is refused with advice (a live session waits for
    its first turn); a TUI starts without one."""
    if runtime.plan(spec(runtime.name), ctx).session is not None:
        assert runtime.plan(spec(runtime.name, prompt=None), ctx).prompt is None
    else:
        with pytest.raises(LaunchFailed, match="needs a prompt"):
            runtime.plan(spec(runtime.name, prompt=None), ctx)
    plan = runtime.plan(spec(runtime.name, prompt=None), with_(ctx, tty=True))
    assert plan.argv[0] == runtime.name


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
def test_follow_up_in_tty_is_typed(runtime: Runtime, ctx: RuntimeContext) -> None:
    """With a TUI running in a terminal, follow-ups are typed into it: no new run."""
    tty = with_(ctx, tty=True)
    assert runtime.follow_up(spec(runtime.name), tty, SESSIONS[runtime.name], "more") is None


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
@pytest.mark.parametrize("session", ["-x", "--last", "a b", "../../etc", ""])
def test_follow_up_refuses_odd_session(runtime: Runtime, ctx: RuntimeContext, session: str) -> None:
    """A session id that is not one (could read as a flag or path) is refused."""
    if not session:  # empty means "unknown": continue the newest session instead
        assert runtime.follow_up(spec(runtime.name), ctx, session, "more") is not None
        return
    with pytest.raises(LaunchFailed, match="not a session id"):
        runtime.follow_up(spec(runtime.name), ctx, session, "more")


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
def test_session_id_from_real_output(runtime: Runtime) -> None:
    """The session id is read from the CLI's own JSON lines, among other log lines."""
    log = f"== coder-1 starting ({runtime.name})\nsome stderr line\n{SAMPLES[runtime.name]}"
    assert runtime.session_id(log) == SESSIONS[runtime.name]
    assert runtime.session_id("") is None
    assert runtime.session_id("not json\n{broken\n[1, 2]\n") is None


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
def test_session_id_newest_run_wins(runtime: Runtime) -> None:
    """With several runs in the log, the last session named is the one to resume."""
    newer = {
        "claude": '{"type":"result","session_id":"11111111-2222-3333-4444-555555555555"}',
        "codex": '{"type":"thread.started","thread_id":"11111111-2222-3333-4444-555555555555"}',
        "pi": '{"type":"session","version":3,"id":"11111111-2222-3333-4444-555555555555"}',
        "opencode": '{"type":"text","sessionID":"11111111-2222-3333-4444-555555555555"}',
    }[runtime.name]
    assert runtime.session_id(SAMPLES[runtime.name] + newer + "\n") == (
        "11111111-2222-3333-4444-555555555555"
    )


@pytest.mark.parametrize("runtime", CLI_RUNTIMES, ids=lambda r: r.name)
def test_session_id_ignores_odd_values(runtime: Runtime) -> None:
    """A session field that could not be a session id (a flag, a number) is not taken."""
    odd = "\n".join(
        json.dumps({"type": t, key: value})
        for value in ("--resume", 42, None, "x y")
        for t, key in (
            ("result", "session_id"),
            ("thread.started", "thread_id"),
            ("session", "id"),
            ("text", "sessionID"),
        )
    )
    assert runtime.session_id(odd) is None


def test_default_registry_has_all_runtimes() -> None:
    """The default registry knows the stub, the four CLIs and the command runtime."""
    registry = default_registry()
    assert registry.names() == ("claude", "codex", "command", "opencode", "pi", "stub")
    for name in registry.names():
        assert registry.get(name).name == name


# -- claude --------------------------------------------------------------------------------

CLAUDE_QUIET = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
}


def test_claude_headless(ctx: RuntimeContext) -> None:
    """Headless: a live session on stream-json in and out, its asks on stdio, the prompt its
    first turn (not on the command line), config under home/.claude."""
    plan = ClaudeRuntime().plan(spec("claude"), ctx)
    assert plan.argv == (
        "claude", "-p", "--input-format", "stream-json", "--output-format", "stream-json",
        "--verbose", "--replay-user-messages", "--permission-prompt-tool", "stdio",
        "--setting-sources", "user", "--strict-mcp-config", "--permission-mode", "acceptEdits",
    )  # fmt: skip
    assert (plan.session, plan.prompt, plan.takes_input) == ("claude-stream", "fix the bug", True)
    assert plan.env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(ctx.home),
        "FLEETWARDEN_AGENT": "coder-1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "CLAUDE_CONFIG_DIR": str(ctx.home / ".claude"),
        **CLAUDE_QUIET,
        **CONTEXT_ENV,
    }
    settings = ctx.home / ".claude" / "settings.json"
    assert json.loads(plan.files[settings]) == {
        "autoCompactWindow": 200_000,
        "permissions": {"allow": [], "deny": [], "ask": list(EDITS_ASK)},
        "attribution": {"commit": "", "pr": ""},
    }
    assert plan.cwd == ctx.workdir


def test_claude_starts_a_session_without_a_prompt(ctx: RuntimeContext) -> None:
    """A live session needs no prompt: it waits for its first turn."""
    plan = ClaudeRuntime().plan(spec("claude", prompt=None), ctx)
    assert (plan.session, plan.prompt) == ("claude-stream", None)


@pytest.mark.parametrize(
    ("mode", "native", "ask", "denied"),
    [
        (PermissionMode.ASK, "default", EDITS_ASK, ()),
        (PermissionMode.EDITS, "acceptEdits", EDITS_ASK, ()),
        (PermissionMode.FULL, "bypassPermissions", (), ()),
        (PermissionMode.READ_ONLY, "plan", EDITS_ASK, READ_ONLY_DENY),
    ],
)
def test_claude_permission_modes(
    ctx: RuntimeContext,
    mode: PermissionMode,
    native: str,
    ask: tuple[str, ...],
    denied: tuple[str, ...],
) -> None:
    """Each mode as Claude Code's own, with the rules beside it: ask rules for what
    acceptEdits would let pass (none in bypass, where they would still ask), edits denied
    in plan mode; allow and deny patterns in Claude Code's syntax; full sets IS_SANDBOX."""
    agent = spec(
        "claude", permissions=mode, allow=("Bash(npm test)", "bash(git *)"), deny=("WebFetch",)
    )
    plan = ClaudeRuntime().plan(agent, ctx)
    assert plan.argv[plan.argv.index("--permission-mode") + 1] == native
    rules = json.loads(plan.files[ctx.home / ".claude" / "settings.json"])["permissions"]
    assert rules["allow"] == ["Bash(npm test)", "Bash(git *)"]
    assert rules["ask"] == list(ask)
    assert rules["deny"] == ["WebFetch", *denied]
    assert (plan.env.get("IS_SANDBOX") == "1") is (mode is PermissionMode.FULL)


def test_claude_refuses_full_unsandboxed_and_bad_rules(ctx: RuntimeContext) -> None:
    """``full`` without a sandbox, or a pattern that is no rule, is refused saying why."""
    with pytest.raises(LaunchFailed, match="`full` unsandboxed"):
        ClaudeRuntime().plan(spec("claude", permissions=PermissionMode.FULL, sandbox="none"), ctx)
    with pytest.raises(LaunchFailed, match="is not a rule"):
        ClaudeRuntime().plan(spec("claude", allow=("Bash(echo (x))",)), ctx)


def test_claude_model_and_provider(ctx: RuntimeContext) -> None:
    """--model before the prompt; the provider URL (path prefix kept) as ANTHROPIC_BASE_URL."""
    plan = ClaudeRuntime().plan(
        spec("claude", model="claude-opus-4-8[1m]", env={"ANTHROPIC_BASE_URL": "http://evil"}),
        with_(ctx, provider_urls={"anthropic": ANTHROPIC_URL}),
    )
    assert plan.argv[-2:] == ("--model", "claude-opus-4-8[1m]")
    assert plan.env["ANTHROPIC_BASE_URL"] == ANTHROPIC_URL  # the metering URL wins


def test_claude_tty(ctx: RuntimeContext) -> None:
    """On a terminal: the TUI in the agent's mode (but `full`), the prompt its first message."""
    tty = with_(ctx, tty=True)
    assert ClaudeRuntime().plan(spec("claude", model="sonnet"), tty).argv == (
        "claude", *OWN_SETTINGS, "--permission-mode", "acceptEdits", "--model", "sonnet",
        "--", "fix the bug",
    )  # fmt: skip
    assert ClaudeRuntime().plan(spec("claude", prompt=None), tty).argv == (
        "claude", *OWN_SETTINGS, "--permission-mode", "acceptEdits",
    )  # fmt: skip
    full = spec("claude", prompt=None, permissions=PermissionMode.FULL)
    assert ClaudeRuntime().plan(full, tty).argv == ("claude", *OWN_SETTINGS)


def test_claude_tty_starts_unattended(ctx: RuntimeContext) -> None:
    """On a terminal, Claude Code's state file answers its first-start questions: onboarding
    done, the agent's directory trusted, its key approved by the last 20 characters (never
    the whole key); a headless run writes no state file."""
    state_path = ctx.home / ".claude" / ".claude.json"
    plan = ClaudeRuntime().plan(spec("claude"), with_(ctx, tty=True))
    state = json.loads(plan.files[state_path])
    assert state == {
        "hasCompletedOnboarding": True,
        "projects": {str(ctx.workdir.resolve()): {"hasTrustDialogAccepted": True}},
        "customApiKeyResponses": {"approved": [ANTHROPIC_KEY[-20:]], "rejected": []},
    }
    assert ANTHROPIC_KEY not in plan.files[state_path]
    assert state_path not in ClaudeRuntime().plan(spec("claude"), ctx).files
    no_key = ClaudeRuntime().plan(spec("claude", secret_env=()), with_(ctx, tty=True))
    assert "customApiKeyResponses" not in json.loads(no_key.files[state_path])


def test_claude_tty_keeps_the_rest_of_its_state(ctx: RuntimeContext) -> None:
    """What Claude Code wrote itself survives the next launch; a key it was told to reject
    is approved now (it is the one the agent is given)."""
    state_path = ctx.home / ".claude" / ".claude.json"
    state_path.parent.mkdir(parents=True)
    workdir = str(ctx.workdir.resolve())
    state_path.write_text(
        json.dumps(
            {
                "numStartups": 3,
                "projects": {workdir: {"lastSessionId": "s-1"}, "/elsewhere": {"x": 1}},
                "customApiKeyResponses": {"approved": ["old"], "rejected": [ANTHROPIC_KEY[-20:]]},
            }
        )
    )
    plan = ClaudeRuntime().plan(spec("claude"), with_(ctx, tty=True))
    state = json.loads(plan.files[state_path])
    assert state["numStartups"] == 3 and state["hasCompletedOnboarding"] is True
    assert state["projects"] == {
        workdir: {"lastSessionId": "s-1", "hasTrustDialogAccepted": True},
        "/elsewhere": {"x": 1},
    }
    assert state["customApiKeyResponses"] == {
        "approved": ["old", ANTHROPIC_KEY[-20:]],
        "rejected": [],
    }


def test_claude_follow_up(ctx: RuntimeContext) -> None:
    """Follow-ups resume the session headless, or --continue when it is unknown."""
    runtime = ClaudeRuntime()
    plan = runtime.follow_up(spec("claude"), ctx, SESSIONS["claude"], "and the tests")
    assert plan is not None
    assert plan.argv[-2:] == ("--resume", SESSIONS["claude"])
    assert plan.argv[:-2] == runtime.plan(spec("claude"), ctx).argv
    assert plan.prompt == "and the tests"
    plan = runtime.follow_up(spec("claude"), ctx, None, "and the tests")
    assert plan is not None
    assert plan.argv[-1:] == ("--continue",)
    assert plan.prompt == "and the tests"


def test_claude_heartbeat_hooks(ctx: RuntimeContext) -> None:
    """With a heartbeat, settings.json hooks POST it; URL and token travel in the env only."""
    plan = ClaudeRuntime().plan(spec("claude"), full(ctx))
    path = ctx.home / ".claude" / "settings.json"
    assert list(plan.files) == [path]
    assert plan.env["FLEETWARDEN_HEARTBEAT_URL"] == HB_URL
    assert plan.env["FLEETWARDEN_HEARTBEAT_TOKEN"] == HB_TOKEN
    hooks = json.loads(plan.files[path])["hooks"]
    assert set(hooks) == {"UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"}
    assert hooks["PreToolUse"][0]["matcher"] == "*"
    assert "matcher" not in hooks["Stop"][0]
    for event, groups in hooks.items():
        [hook] = groups[0]["hooks"]
        assert hook["type"] == "command"
        assert hook["timeout"] == 10
        state = "waiting" if event == "Stop" else "working"
        assert hook["command"] == heartbeat_command(state)
        assert HB_URL not in hook["command"]
        assert "127.0.0.1" not in hook["command"]


def test_claude_heartbeat_needs_url_and_token(ctx: RuntimeContext) -> None:
    """Without both URL and token there are no hooks and no heartbeat variables."""
    plan = ClaudeRuntime().plan(spec("claude"), with_(ctx, heartbeat_url=HB_URL))
    [settings] = plan.files.values()
    assert "hooks" not in json.loads(settings)
    assert "FLEETWARDEN_HEARTBEAT_URL" not in plan.env


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("http://example.com:80/heartbeat/x", HB_TOKEN),
        ("https://127.0.0.1:4/heartbeat/x", HB_TOKEN),
        ("http://127.0.0.1:41234/heartbeat/x?$(id)", HB_TOKEN),
        ("http://127.0.0.1:41234@evil/x", HB_TOKEN),
        (HB_URL, "short"),
        (HB_URL, "token with spaces and 'quotes' $(id)"),
    ],
)
def test_claude_heartbeat_values_are_checked(ctx: RuntimeContext, url: str, token: str) -> None:
    """Only a loopback http URL and a URL-safe token are given to the hooks."""
    with pytest.raises(LaunchFailed, match="refusing a heartbeat"):
        ClaudeRuntime().plan(spec("claude"), with_(ctx, heartbeat_url=url, heartbeat_token=token))


def test_heartbeat_command_never_evaluates_values(tmp_path: Path) -> None:
    """The hook command, run by sh, hands URL and token to curl as plain words, whatever
    they hold; it prints nothing and succeeds even when curl fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "args"
    curl = bin_dir / "curl"
    curl.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {args_file}\nexit 7\n'
    )
    curl.chmod(0o755)
    hostile = "x; touch pwned $(touch pwned2) `touch pwned3`"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FLEETWARDEN_HEARTBEAT_URL": hostile,
        "FLEETWARDEN_HEARTBEAT_TOKEN": hostile,
    }
    result = subprocess.run(
        ["/bin/sh", "-c", heartbeat_command("working")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not any((tmp_path / name).exists() for name in ("pwned", "pwned2", "pwned3"))
    args = args_file.read_text().splitlines()
    assert args[-1] == hostile
    assert f"{TOKEN_HEADER}: {hostile}" in args
    assert '{"state":"working"}' in args


def test_claude_session_id_from_any_event() -> None:
    """Every stream-json event carries session_id: a run cut short still names its session."""
    first_line = CLAUDE_OUT.splitlines()[0]
    assert ClaudeRuntime().session_id(first_line) == SESSIONS["claude"]


# -- codex ---------------------------------------------------------------------------------


def test_codex_headless(ctx: RuntimeContext) -> None:
    """Headless: a live app-server session whose first turn is the prompt, CODEX_HOME with
    a quiet config.toml; a follow-up is exec --json with the text after --."""
    plan = CodexRuntime().plan(spec("codex", secret_env=("OPENAI_API_KEY",)), ctx)
    assert plan.argv == ("codex", "app-server")
    assert (plan.session, plan.prompt) == ("codex-app-server", "fix the bug")
    assert plan.takes_input
    follow = CodexRuntime().follow_up(spec("codex"), ctx, None, "fix the bug")
    assert follow is not None
    assert follow.argv[:3] == ("codex", "exec", "resume")
    assert follow.argv[-2:] == ("--", "fix the bug")
    codex_home = ctx.home / ".codex"
    assert plan.env["CODEX_HOME"] == str(codex_home)
    assert plan.env["OPENAI_API_KEY"] == OPENAI_KEY
    config = tomllib.loads(plan.files[codex_home / "config.toml"])
    assert config == {
        "sandbox_mode": "danger-full-access",  # Fleetwarden's sandbox is the boundary
        "check_for_update_on_startup": False,
        "analytics": {"enabled": False},
        "features": {"plugins": False, "apps": False},
        "otel": {"exporter": "none", "metrics_exporter": "none"},
        "projects": {str(ctx.workdir): {"trust_level": "untrusted"}},  # no project layers
    }
    unsandboxed = CodexRuntime().plan(spec("codex", sandbox="none"), ctx)
    assert "sandbox_mode" not in tomllib.loads(unsandboxed.files[codex_home / "config.toml"])


def test_codex_provider_config(ctx: RuntimeContext) -> None:
    """A provider URL becomes a custom Responses provider at URL/v1 reading the named key."""
    agent = spec("codex", model="gpt-5-codex", secret_env=("MY_KEY", "OPENAI_API_KEY"))
    plan = CodexRuntime().plan(agent, with_(ctx, provider_urls={"openai": OPENAI_URL}))
    follow = CodexRuntime().follow_up(agent, ctx, "s1", "fix the bug")
    assert follow is not None
    assert follow.argv[-5:] == ("-m", "gpt-5-codex", "--", "s1", "fix the bug")
    config = tomllib.loads(plan.files[ctx.home / ".codex" / "config.toml"])
    assert config["model_provider"] == "fleetwarden"
    assert config["model_providers"]["fleetwarden"] == {
        "name": "Fleetwarden",
        "base_url": OPENAI_URL + "/v1",
        "env_key": "OPENAI_API_KEY",
        "wire_api": "responses",
        "supports_websockets": False,
    }
    assert config["analytics"] == {"enabled": False}


@pytest.mark.parametrize(
    ("secret_env", "url", "key_var", "base_url"),
    [
        ((), "http://127.0.0.1:9/v1/", "OPENAI_API_KEY", "http://127.0.0.1:9/v1"),
        (("AZ_KEY", "GH_TOKEN"), "http://h:1/p", "AZ_KEY", "http://h:1/p/v1"),
        (("OPENAI_API_KEY",), 'http://h:1/"quo\\te', "OPENAI_API_KEY", 'http://h:1/"quo\\te/v1'),
    ],
)
def test_codex_key_variable_and_url(
    ctx: RuntimeContext, secret_env: tuple[str, ...], url: str, key_var: str, base_url: str
) -> None:
    """env_key names OPENAI_API_KEY if listed, else the first secret; /v1 is added once and
    odd characters are quoted as TOML."""
    plan = CodexRuntime().plan(
        spec("codex", secret_env=secret_env), with_(ctx, provider_urls={"openai": url})
    )
    provider = tomllib.loads(plan.files[ctx.home / ".codex" / "config.toml"])["model_providers"]
    assert provider["fleetwarden"]["env_key"] == key_var
    assert provider["fleetwarden"]["base_url"] == base_url


def test_codex_tty(ctx: RuntimeContext) -> None:
    """On a terminal: the TUI with the prompt after --."""
    tty = with_(ctx, tty=True)
    assert CodexRuntime().plan(spec("codex", model="o3"), tty).argv == (
        "codex", "-m", "o3", "--", "fix the bug",
    )  # fmt: skip


def test_codex_tty_untrusts_a_workdir_with_project_config(ctx: RuntimeContext) -> None:
    """On a terminal the workdir is an untrusted project when it, or a parent up to its
    repository's root, holds a ``.codex`` folder; with none it has no trust level (the TUI
    would stop at a screen about it)."""
    tty = with_(ctx, tty=True)
    repo = ctx.workdir.parent
    ctx.workdir.mkdir(parents=True)

    def trust() -> object:
        plan = CodexRuntime().plan(spec("codex"), tty)
        return tomllib.loads(plan.files[ctx.home / ".codex" / "config.toml"]).get("projects")

    assert trust() is None
    (repo / ".codex").mkdir()
    assert trust() is None  # a parent outside any repository is not the project
    (repo / ".git").mkdir()
    assert trust() == {str(ctx.workdir): {"trust_level": "untrusted"}}
    (repo / ".codex").rmdir()
    (ctx.workdir / ".codex").mkdir()
    assert trust() == {str(ctx.workdir): {"trust_level": "untrusted"}}


def test_codex_follow_up(ctx: RuntimeContext) -> None:
    """Follow-ups: exec resume SESSION TEXT after --, or --last when the session is unknown."""
    runtime = CodexRuntime()
    plan = runtime.follow_up(spec("codex"), ctx, SESSIONS["codex"], "and the tests")
    assert plan is not None
    assert plan.argv == (
        "codex", "exec", "resume", "--skip-git-repo-check", "--json",
        "--", SESSIONS["codex"], "and the tests",
    )  # fmt: skip
    plan = runtime.follow_up(spec("codex"), ctx, None, "and the tests")
    assert plan is not None
    assert plan.argv[3:] == ("--skip-git-repo-check", "--json", "--last", "--", "and the tests")
    assert (ctx.home / ".codex" / "config.toml") in plan.files


def test_codex_session_only_from_thread_started() -> None:
    """Only thread.started names the session; other ids (items) are not sessions."""
    assert CodexRuntime().session_id('{"type":"item.completed","thread_id":"abc"}') is None


# -- pi ------------------------------------------------------------------------------------


def test_pi_headless(ctx: RuntimeContext) -> None:
    """Headless: a live session (rpc mode) with the anthropic provider, the prompt its first
    turn (never on the command line), offline, its own agent dir."""
    plan = PiRuntime().plan(spec("pi", model="claude-sonnet-4-5"), ctx)
    assert plan.argv == (
        "pi", "--no-skills", "--mode", "rpc", "--provider", "anthropic",
        "--model", "claude-sonnet-4-5", *PI_GATE,
    )  # fmt: skip
    assert (plan.session, plan.prompt, plan.takes_input) == ("pi-rpc", "fix the bug", True)
    assert plan.env["PI_OFFLINE"] == "1"
    assert plan.env["PI_CODING_AGENT_DIR"] == str(ctx.home / ".pi" / "agent")
    assert plan.files == {}


@pytest.mark.parametrize("url", [ANTHROPIC_URL, ANTHROPIC_URL + "/v1", ANTHROPIC_URL + "/"])
def test_pi_models_json(ctx: RuntimeContext, url: str) -> None:
    """The provider URL goes into models.json without /v1 (pi adds it)."""
    plan = PiRuntime().plan(spec("pi"), with_(ctx, provider_urls={"anthropic": url}))
    models = json.loads(plan.files[ctx.home / ".pi" / "agent" / "models.json"])
    assert models == {"providers": {"anthropic": {"baseUrl": ANTHROPIC_URL}}}


def test_pi_tty(ctx: RuntimeContext) -> None:
    """On a terminal: the TUI with the prompt as its first message."""
    tty = with_(ctx, tty=True)
    assert PiRuntime().plan(spec("pi"), tty).argv == (
        "pi", "--no-skills", "--provider", "anthropic", *PI_GATE, "fix the bug",
    )  # fmt: skip


def test_pi_follow_up(ctx: RuntimeContext) -> None:
    """Follow-ups: a new session process with --session ID, or --continue when the session
    is unknown; the text is its first turn."""
    runtime = PiRuntime()
    plan = runtime.follow_up(spec("pi"), ctx, SESSIONS["pi"], "-and the tests")
    assert plan is not None
    assert plan.argv == (
        "pi", "--no-skills", "--mode", "rpc", "--provider", "anthropic", *PI_GATE,
        "--session", SESSIONS["pi"],
    )  # fmt: skip
    assert plan.prompt == "-and the tests"
    plan = runtime.follow_up(spec("pi"), ctx, None, "and the tests")
    assert plan is not None
    assert plan.argv[-1] == "--continue"


PI_GATE = ("--no-extensions", "--extension", str(PI_EXTENSION))


# -- opencode ------------------------------------------------------------------------------

OPENCODE_QUIET = {
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_PROJECT_CONFIG": "1",
    "npm_config_fetch_retries": "0",
}


def test_opencode_headless(ctx: RuntimeContext) -> None:
    """Headless: run --format json, the prompt after --, inline config with the gate's
    plugin and the native permission map, no files."""
    plan = OpencodeRuntime().plan(spec("opencode"), ctx)
    assert plan.argv == ("opencode", "run", "--format", "json", "--", "fix the bug")
    assert OPENCODE_QUIET.items() <= plan.env.items()
    assert json.loads(plan.env["OPENCODE_CONFIG_CONTENT"]) == {
        "autoupdate": False,
        "share": "disabled",
        "agent": {"title": {"disable": True}},
        "plugin": [OPENCODE_PLUGIN.as_uri()],
        "permission": {
            "external_directory": "allow", "bash": "allow", "edit": "allow", "webfetch": "allow"
        },
    }  # fmt: skip
    assert plan.files == {}


def test_opencode_provider_and_model(ctx: RuntimeContext) -> None:
    """baseURL ends in /v1; a bare model name is given the anthropic/ prefix."""
    runtime = OpencodeRuntime()
    urls = {"anthropic": ANTHROPIC_URL}
    plan = runtime.plan(spec("opencode", model="claude-sonnet-4-5"), with_(ctx, provider_urls=urls))
    assert plan.argv[4:6] == ("--model", "anthropic/claude-sonnet-4-5")
    config = json.loads(plan.env["OPENCODE_CONFIG_CONTENT"])
    assert config["provider"] == {"anthropic": {"options": {"baseURL": ANTHROPIC_URL + "/v1"}}}
    assert config["agent"] == {"title": {"disable": True}}
    plan = runtime.plan(spec("opencode", model="openai/gpt-5"), ctx)
    assert plan.argv[4:6] == ("--model", "openai/gpt-5")


def test_opencode_tty(ctx: RuntimeContext) -> None:
    """On a terminal: the TUI with the prompt glued to --prompt= (never read as a flag)."""
    tty = with_(ctx, tty=True)
    assert OpencodeRuntime().plan(spec("opencode", prompt="--help"), tty).argv == (
        "opencode", "--prompt=--help",
    )  # fmt: skip
    assert OpencodeRuntime().plan(spec("opencode", prompt=None), tty).argv == (
        "opencode",
    )  # fmt: skip


def test_opencode_follow_up(ctx: RuntimeContext) -> None:
    """Follow-ups: --session ID, or --continue, then the text after --."""
    runtime = OpencodeRuntime()
    plan = runtime.follow_up(spec("opencode"), ctx, SESSIONS["opencode"], "and the tests")
    assert plan is not None
    assert plan.argv == (
        "opencode", "run", "--format", "json",
        "--session", SESSIONS["opencode"], "--", "and the tests",
    )  # fmt: skip
    plan = runtime.follow_up(spec("opencode"), ctx, None, "and the tests")
    assert plan is not None
    assert plan.argv[4:] == ("--continue", "--", "and the tests")
