"""The ``claude`` runtime: Claude Code, headless as a live session or its TUI on a terminal.

Headless, one process serves every turn of the session (:mod:`fleet.sessions.claude`)::

    claude -p --input-format stream-json --output-format stream-json --verbose
        --replay-user-messages --permission-prompt-tool stdio
        --setting-sources user --strict-mcp-config --permission-mode M [--model X]

Turns (the prompt first) arrive on its stdin, the run's FIFO; ``stream-json`` writes one
JSON event per line as it happens, so the agent's log fills while it works; every event
carries the ``session_id``. Each tool call its mode and rules do not decide is asked on
stdout and answered on stdin (``--permission-prompt-tool stdio``): the operator's yes or
no. When the process has ended, a follow-up starts a new one resuming that session with
``--resume SESSION`` (``--continue``, the directory's newest session, when none is
known). On a terminal: ``claude --setting-sources user --strict-mcp-config
[--permission-mode M] [--model M] [-- PROMPT]``. The prompt always follows ``--``, so a
prompt such as ``--help`` is sent to the model, never read as a flag.

Only Fleetwarden's settings count (:data:`OWN_SETTINGS`): the workdir's ``.claude/``
settings and ``.mcp.json`` are not read, so a repository decides no permission, hook or
MCP server. Its ``CLAUDE.md`` still is: instructions, not permissions.

Permission modes (:class:`~fleet.model.PermissionMode`) as Claude Code's own, measured on
2.1.197: ``ask`` → ``default``; ``edits`` → ``acceptEdits``, which also lets ``rm`` and
``mv`` run unasked, so ``permissions.ask`` rules bring those back to the operator (writes
outside the workdir are asked by the mode itself); ``full`` → ``bypassPermissions``
(refused as root unless ``IS_SANDBOX=1``: sandboxed agents only; ask rules would still
ask there, so it has none); ``read-only`` → ``plan``, with edits denied (plan mode
alone asks for them). The agent's ``allow:`` and ``deny:`` patterns become
``permissions.allow`` and ``permissions.deny``.

Environment: the provider's URL as ``ANTHROPIC_BASE_URL``, config and sessions under
``<home>/.claude`` (``CLAUDE_CONFIG_DIR``), and the switches that keep it from calling
anything but that URL. The API key comes only from the spec's ``secret_env``.

Heartbeats: given a heartbeat URL and token, ``<home>/.claude/settings.json`` holds hooks
(``UserPromptSubmit``, ``PreToolUse``, ``PostToolUse``: working; ``Stop``: waiting) that
POST to the URL with curl. Hook commands are shell strings, so ours is a constant: the URL
and token reach it only as ``$FLEETWARDEN_HEARTBEAT_URL`` / ``$FLEETWARDEN_HEARTBEAT_TOKEN``,
expanded inside double quotes (never parsed as shell code), which also keeps the token out
of the file. Both are checked first: a loopback ``http`` URL, a URL-safe token.

MCP servers and skills (:mod:`fleet.runtimes.mcp_launch`, :mod:`fleet.runtimes.skill_copies`):
an agent granted servers is given ``--mcp-config <home>/.fleetwarden/mcp.json`` right after
``--strict-mcp-config`` (a path: the run's token in that file, mode 0600, never in argv;
the flag takes several values, so a prompt always comes after ``--``), and
``MCP_CONNECTION_NONBLOCKING=0`` so a session starts with its servers' tools. Their tools
are ``mcp__<server>__<tool>``. Skills are copied into ``$CLAUDE_CONFIG_DIR/skills``, the
only skills folder read with ``--setting-sources user``.

On a terminal, nobody is there to answer the TUI's first-start questions, so
``<home>/.claude/.claude.json`` (Claude Code's own state, kept as it is otherwise) is
seeded with the answers (:func:`tui_state`): onboarding done (else it first checks that it
can reach Anthropic's own host, and exits), the agent's directory trusted, and the API
key it finds in its environment approved (else it asks whether to use it, "no" by default).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet.connections.token import TOKEN_HEADER
from fleet.errors import LaunchFailed
from fleet.lane_files import read_lane_file
from fleet.model import AgentSpec, LaunchPlan, PermissionMode
from fleet.permissions.rules import BadRule, parse_rule
from fleet.placeholders import placeholder_token
from fleet.runtimes._cli import CliRuntime, checked_model, checked_session
from fleet.runtimes.base import RuntimeContext, base_env
from fleet.runtimes.mcp_launch import claude_env, mcp_file, mcp_json
from fleet.runtimes.skill_copies import skill_files
from fleet.sessions import claude as session
from fleet.transcript.claude import ClaudeStream
from fleet.transcript.events import StreamParser

# Settings from Fleetwarden's own files only: ``user`` is the agent's private config
# directory, which Fleetwarden writes. A workdir's ``.claude/settings.json`` and
# ``settings.local.json`` (``project``, ``local``) would otherwise add permission rules and
# hooks, and its ``.mcp.json`` servers (started even in ``-p`` mode, measured on 2.1.197):
# no MCP server but those Fleetwarden names (the agent's grants, ``--mcp-config``).
OWN_SETTINGS = ("--setting-sources", "user", "--strict-mcp-config")
HEADLESS_FLAGS = (
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--replay-user-messages",
    "--permission-prompt-tool",
    "stdio",
)
# acceptEdits lets these file commands run unasked (measured on 2.1.197): asked instead.
EDITS_ASK = ("Bash(rm:*)", "Bash(rmdir:*)", "Bash(mv:*)", "Bash(unlink:*)", "Bash(shred:*)")
READ_ONLY_DENY = ("Edit", "MultiEdit", "Write", "NotebookEdit")
QUIET_ENV = {
    # Without the first, Claude Code also calls Anthropic's own host, bypassing the URL.
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
URL_VAR = "FLEETWARDEN_HEARTBEAT_URL"
ASK_VAR = "FLEETWARDEN_ASK_URL"
ASK_SLACK = 60  # seconds the hook waits past the ask's own deadline
TOKEN_VAR = "FLEETWARDEN_HEARTBEAT_TOKEN"
HOOK_STATES = {
    "UserPromptSubmit": "working",
    "PreToolUse": "working",
    "PostToolUse": "working",
    "Stop": "waiting",  # the turn is over: alive, waiting for a follow-up
}
HOOK_TIMEOUT = 10  # seconds Claude Code gives a hook; curl itself gives up after 5
COMPACT_WINDOW = 200_000  # tokens of context before Claude Code compacts
CONTEXT_ENV = {
    "CLAUDE_CODE_DISABLE_1M_CONTEXT": "1",
    "CLAUDE_CODE_AUTO_COMPACT_WINDOW": str(COMPACT_WINDOW),
}

STATE_FILE = ".claude.json"  # Claude Code's own state, in its config directory
KEY_SUFFIX = 20  # Claude Code remembers an approved key by its last 20 characters
STATE_CAP = 32 * 1024 * 1024  # bytes of that state read at most (it grows with history)

_HEARTBEAT_URL = re.compile(r"http://127\.0\.0\.1:[0-9]{1,5}(/[A-Za-z0-9._~-]+)*/?")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")


class ClaudeRuntime(CliRuntime):
    """Claude Code (``@anthropic-ai/claude-code``)."""

    name = "claude"
    session_protocol = session.NAME

    def tui_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        prompt = ("--", spec.prompt) if spec.prompt else ()
        # bypassPermissions would stop the TUI at a confirmation: ``full`` asks there.
        mode = () if spec.permissions is PermissionMode.FULL else _mode_args(spec)
        return (self._exe, *OWN_SETTINGS, *mode, *_model_args(spec), *prompt)

    def headless_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        flags = (*HEADLESS_FLAGS, *OWN_SETTINGS, *_mode_args(spec), *_model_args(spec))
        return (self._exe, "-p", *flags)

    def resume_argv(self, spec: AgentSpec, session: str | None, text: str) -> tuple[str, ...]:
        resume = ("--resume", checked_session(session)) if session else ("--continue",)
        return (*self.headless_argv(spec), *resume)  # the text is its first turn, on stdin

    def skills_folder(self, ctx: RuntimeContext) -> Path:
        return ctx.home / ".claude" / "skills"  # $CLAUDE_CONFIG_DIR/skills

    def event_session(self, event: Mapping[str, Any]) -> object:
        return event.get("session_id")

    def _launch_plan(
        self, spec: AgentSpec, ctx: RuntimeContext, argv: tuple[str, ...], prompt: str | None
    ) -> LaunchPlan:
        if spec.mcp:  # the file's path right after --strict-mcp-config, never the prompt
            at = argv.index(OWN_SETTINGS[-1]) + 1
            argv = (*argv[:at], "--mcp-config", str(mcp_file(ctx.home)), *argv[at:])
        return super()._launch_plan(spec, ctx, argv, prompt)

    def stream_parser(self) -> StreamParser:
        return ClaudeStream()

    def setup(self, spec: AgentSpec, ctx: RuntimeContext) -> tuple[dict[str, str], dict[Path, str]]:
        config_dir = ctx.home / ".claude"
        env = {**QUIET_ENV, "CLAUDE_CONFIG_DIR": str(config_dir)}
        env.update({k: v for k, v in CONTEXT_ENV.items() if k not in spec.env})
        if "anthropic" in ctx.provider_urls:
            env["ANTHROPIC_BASE_URL"] = ctx.provider_urls["anthropic"]
        kind = ctx.accounts.get("anthropic")
        if kind == "claude_subscription":
            env["CLAUDE_CODE_OAUTH_TOKEN"] = placeholder_token(spec.name)
            env["ENABLE_CLAUDEAI_MCP_SERVERS"] = "false"
        elif kind is not None or "anthropic" in ctx.offline:  # the stand-in takes any key
            env["ANTHROPIC_API_KEY"] = placeholder_token(spec.name)
        settings: dict[str, Any] = {
            "autoCompactWindow": _compact_window(spec),
            "permissions": permission_rules(spec),
            # Claude Code asks for a `Co-Authored-By: <model> <noreply@anthropic.com>` line
            # in each commit and a line in each PR body: the git door credits only the
            # run's requester, and the commit's author already names the agent.
            "attribution": {"commit": "", "pr": ""},
        }
        if spec.permissions is PermissionMode.FULL and not ctx.tty:
            env["IS_SANDBOX"] = "1"  # bypassPermissions as root; check-config allows it
        if ctx.heartbeat_url and ctx.heartbeat_token:
            env[URL_VAR], env[TOKEN_VAR] = _checked_heartbeat(
                ctx.heartbeat_url, ctx.heartbeat_token
            )
            settings.update(heartbeat_settings())
            if ctx.tty:  # the TUI asks through a blocking hook; headless asks on stdout
                env[ASK_VAR] = ask_url(env[URL_VAR])
                settings["hooks"]["PermissionRequest"] = [permission_hook(spec)]
        files = {config_dir / "settings.json": json.dumps(settings, indent=2)}
        files.update(mcp_json(spec, ctx))
        if spec.mcp:  # wait for the servers at start: a run has its tools, or says why not
            env["MCP_CONNECTION_NONBLOCKING"] = "0"
            env.update(claude_env(spec))  # a call asked in chat is waited for
        files.update(skill_files(spec, ctx, self.skills_folder(ctx)))
        if ctx.tty:
            key = env.get("ANTHROPIC_API_KEY") or base_env(spec, ctx).get("ANTHROPIC_API_KEY")
            state = config_dir / STATE_FILE
            files[state] = json.dumps(tui_state(_read_state(ctx.home), ctx.workdir, key), indent=2)
        return env, files


def permission_rules(spec: AgentSpec) -> dict[str, list[str]]:
    """Claude Code's ``permissions`` settings for ``spec``: its ``allow:`` and ``deny:``
    patterns, the rules its mode needs beside Claude Code's own mode, and every tool of
    each server it is granted (``mcp__<server>``) allowed: the MCP door is the one place
    that asks about those, so neither the TUI's hook nor the live session asks again."""
    granted = [f"mcp__{grant.server}" for grant in spec.mcp]
    rules = {
        "allow": [*(_claude_rule(spec, text) for text in spec.allow), *granted],
        "deny": [_claude_rule(spec, text) for text in spec.deny],
        "ask": [] if spec.permissions is PermissionMode.FULL else list(EDITS_ASK),
    }
    if spec.permissions is PermissionMode.READ_ONLY:
        rules["deny"] += READ_ONLY_DENY
    return rules


def _claude_rule(spec: AgentSpec, text: str) -> str:
    try:
        return str(parse_rule(text))
    except BadRule as exc:
        raise LaunchFailed(f"{spec.name} cannot start: {exc}") from None


def _mode_args(spec: AgentSpec) -> tuple[str, ...]:
    if spec.permissions is PermissionMode.FULL and spec.sandbox == "none":
        raise LaunchFailed(
            f"{spec.name} cannot start with permissions `full` unsandboxed: give it a "
            "sandbox (`sandbox: bwrap`) or another mode (`edits`, `ask`)"
        )
    return ("--permission-mode", session.MODES[spec.permissions])


def tui_state(current: Mapping[str, Any], workdir: Path, api_key: str | None) -> dict[str, Any]:
    """Claude Code's state (``current``) with the first-start questions answered: onboarding
    done, ``workdir`` trusted, ``api_key`` approved. A key is remembered by its last
    characters, as Claude Code itself does once a user says yes; a key too short to keep
    it whole out of the file is left for the TUI to ask about. Anything else is kept."""
    state = dict(current)
    state["hasCompletedOnboarding"] = True
    projects = _object(state.get("projects"))
    project = str(workdir.resolve())
    projects[project] = {**_object(projects.get(project)), "hasTrustDialogAccepted": True}
    state["projects"] = projects
    if api_key is not None and len(api_key) > KEY_SUFFIX:
        suffix = api_key[-KEY_SUFFIX:]
        answers = _object(state.get("customApiKeyResponses"))
        for side in ("approved", "rejected"):
            answers[side] = [k for k in _list(answers.get(side)) if k != suffix]
        answers["approved"].append(suffix)
        state["customApiKeyResponses"] = answers
    return state


def _object(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _read_state(home: Path) -> Mapping[str, Any]:
    """The state file's object; empty when there is none, or it is not JSON, or it is no
    plain file of its own (a symlink, a FIFO, one too large: :mod:`fleet.lane_files`)."""
    try:
        raw = read_lane_file(home, f".claude/{STATE_FILE}", STATE_CAP)
        data = json.loads(raw) if raw is not None else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def heartbeat_settings() -> Mapping[str, Any]:
    """Claude Code settings whose hooks report each step to the heartbeat endpoint."""
    hooks: dict[str, list[dict[str, Any]]] = {}
    for event, state in HOOK_STATES.items():
        hook = {"type": "command", "command": heartbeat_command(state), "timeout": HOOK_TIMEOUT}
        # Tool events take a matcher ("*": every tool); the others have none.
        matcher = {"matcher": "*"} if event.endswith("ToolUse") else {}
        hooks[event] = [{**matcher, "hooks": [hook]}]
    return {"hooks": hooks}


def ask_url(heartbeat_url: str) -> str:
    """Where the agent's permission hook asks: the heartbeat endpoint's ``/ask/<agent>``."""
    return heartbeat_url.replace("/heartbeat/", "/ask/", 1)


def ask_command(wait: str) -> str:
    """The shell command a blocking hook runs to ask the operator: it posts the hook's JSON
    (stdin) to ``$FLEETWARDEN_ASK_URL`` with the agent's token and prints the answer,
    retrying through a restart of Fleetwarden for ``wait`` seconds (a number, or a quoted
    variable the shell expands). A constant but for ``wait``: URL and token come from the
    environment, never from the file."""
    return " ".join(
        [
            "curl -fsS --noproxy '*' --connect-timeout 2",
            f"--retry 1000 --retry-all-errors --retry-delay 1 --retry-max-time {wait}",
            f"-m {wait}",
            f'-H "{TOKEN_HEADER}: ${TOKEN_VAR}"',
            "-H 'Content-Type: application/json'",
            "--data-binary @-",
            f'"${ASK_VAR}"',
        ]
    )


def permission_hook(spec: AgentSpec) -> dict[str, Any]:
    """The TUI's ``PermissionRequest`` hook: it posts what Claude Code asks to
    Fleetwarden and prints the answer (:mod:`fleet.sessions.hook_asks`). curl retries
    through a restart of Fleetwarden (the ask is found again, not asked twice); if it gives
    up, Claude Code shows its own dialog in the terminal."""
    wait = int(spec.approval_timeout) + ASK_SLACK
    hook = {"type": "command", "command": ask_command(str(wait)), "timeout": wait + ASK_SLACK}
    return {"matcher": "*", "hooks": [hook]}


def heartbeat_command(state: str) -> str:
    """The hook's shell command: a constant but for ``state``, one of our own words.

    It prints nothing (a ``UserPromptSubmit`` hook's output would reach the model) and
    always succeeds, so a missing curl or a down endpoint never disturbs the agent."""
    if state not in ("working", "waiting") or not _HEADER_NAME.fullmatch(TOKEN_HEADER):
        raise ValueError(f"bad heartbeat hook: state {state!r}, header {TOKEN_HEADER!r}")
    body = json.dumps({"state": state}, separators=(",", ":"))
    return " ".join(
        [
            "curl -fs --noproxy '*' --connect-timeout 2 -m 5 -o /dev/null",
            f'-H "{TOKEN_HEADER}: ${TOKEN_VAR}"',
            "-H 'Content-Type: application/json'",
            f"--data {shlex.quote(body)}",
            f'"${URL_VAR}"',
            "|| true",
        ]
    )


def _compact_window(spec: AgentSpec) -> int:
    """The agent's own auto-compaction window when its ``env`` sets one, else ours."""
    own = spec.env.get("CLAUDE_CODE_AUTO_COMPACT_WINDOW", "")
    return int(own) if own.isdigit() else COMPACT_WINDOW


def _checked_heartbeat(url: str, token: str) -> tuple[str, str]:
    if not _HEARTBEAT_URL.fullmatch(url):
        raise LaunchFailed("refusing a heartbeat URL that is not http://127.0.0.1:PORT/…")
    if not _TOKEN.fullmatch(token):
        raise LaunchFailed("refusing a heartbeat token that is not URL-safe base64")
    return url, token


def _model_args(spec: AgentSpec) -> tuple[str, ...]:
    model = checked_model(spec)
    return ("--model", model) if model else ()
