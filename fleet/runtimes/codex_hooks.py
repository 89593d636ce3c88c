"""Heartbeats from Codex's own hooks, where no live session reports them (its TUI in tmux,
a one-turn ``codex exec`` follow-up).

Codex 0.169 runs the command hooks of ``$CODEX_HOME/hooks.json`` (the ``hooks`` feature
is on by default) on ``UserPromptSubmit``, ``PreToolUse``, ``PostToolUse``,
``PermissionRequest`` and ``Stop``; each hook here posts ``working`` or ``waiting`` to the
heartbeat endpoint with the same curl command Claude Code's hooks use
(:func:`fleet.runtimes.claude.heartbeat_command`, which prints nothing and never fails).

Codex runs a hook that is not managed only once it is trusted: ``config.toml`` holds
``[hooks.state."<file>:<event>:<group>:<handler>"] trusted_hash = "sha256:…"``, the hash
being Codex's own of the hook's definition, whatever file it is in. The hashes below were
read from the pinned Codex (``hooks/list`` of its app-server answers ``currentHash``); a
test checks them against the real binary, so a Codex that hashes otherwise fails there
instead of leaving an agent without heartbeats.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from fleet.model import LaunchPlan
from fleet.runtimes.base import RuntimeContext
from fleet.runtimes.claude import (
    ASK_VAR,
    HOOK_TIMEOUT,
    TOKEN_VAR,
    URL_VAR,
    _checked_heartbeat,
    ask_url,
    heartbeat_command,
)
from fleet.runtimes.claude import ask_command as curl_ask

HOOKS_FILE = "hooks.json"
ASK_WAIT_VAR = "FLEETWARDEN_ASK_WAIT"  # seconds the ask hook waits for the operator
ASK_HOOK_TIMEOUT = 86_400  # seconds Codex gives the ask hook (a constant: it is hashed)
ASK_SLACK = 60  # seconds the hook waits past the ask's own deadline
# What the ask hook answers when Fleetwarden cannot be reached in time: no (Codex would
# otherwise run the call as if allowed).
UNASKED = json.dumps(
    {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "Fleetwarden could not ask the operator: denied",
        }
    },
    separators=(",", ":"),
)
# Codex's event name → (its key label, the state the hook reports, its trusted hash).
HOOKS = {
    "UserPromptSubmit": (
        "user_prompt_submit",
        "working",
        "sha256:86b3c8ce545384717684fbd22943494ea638ecf72677eec3cb3d5c82608840b2",
    ),
    "PreToolUse": (
        "pre_tool_use",
        "working",
        "sha256:c0c42b69864d12cbe3b3d940e5ac65842ef91001a6fa48913949791c2c1211f3",
    ),
    "PostToolUse": (
        "post_tool_use",
        "working",
        "sha256:7c9583121d242bd883117ff797998cf3bea9def908396cb9b31b896f72c01b04",
    ),
    # Codex asks on its screen: alive, waiting for the operator.
    "PermissionRequest": (
        "permission_request",
        "waiting",
        "sha256:bac056367c8fd1926bb9bc632a65311d90ebb3c59fda0e58462d5d4b05fd1436",
    ),
    "Stop": (
        "stop",
        "waiting",
        "sha256:88308f7ad2349f27aa5027e4134cf4a6a40298aa5aeed5a4981b83f74b98872b",
    ),
}
# The asking PreToolUse hook: on every tool call, or on shell commands only.
ASK_ALL = ""
ASK_SHELL = "^Bash$"
ASK_DIGESTS = {
    ASK_ALL: "sha256:3995cdcb11c158a0c0f1093c54b317dc5b400cfbfda5393932a3efc96e9511cb",
    ASK_SHELL: "sha256:142b88ec58ef20ec34a14a27455ce0e935142d30510bc4a04731b6f9b900f280",
}


def with_heartbeats(
    plan: LaunchPlan, ctx: RuntimeContext, asks: str | None = None, ask_wait: float = 0
) -> LaunchPlan:
    """``plan`` with Codex's heartbeat hooks, when ``ctx`` gives a heartbeat endpoint
    (refused unless it is loopback): the endpoint in its environment, ``hooks.json`` and
    the ``config.toml`` tables that trust its hooks in ``CODEX_HOME``. With ``asks``
    (:data:`ASK_ALL` or :data:`ASK_SHELL`), the tool calls it names are asked in chat first
    (the ``PreToolUse`` hook posts them to the endpoint's ``/ask`` and waits up to
    ``ask_wait`` seconds and a minute for the answer)."""
    if not (ctx.heartbeat_url and ctx.heartbeat_token):
        return plan
    url, token = _checked_heartbeat(ctx.heartbeat_url, ctx.heartbeat_token)
    hooks: dict[str, list[dict[str, Any]]] = _hooks()
    trusted = [(label, digest) for label, _, digest in HOOKS.values()]
    env = {**plan.env, URL_VAR: url, TOKEN_VAR: token}
    if asks is not None:
        matcher = {} if asks == ASK_ALL else {"matcher": ASK_SHELL}
        hook = {"type": "command", "command": ask_command(), "timeout": ASK_HOOK_TIMEOUT}
        hooks["PreToolUse"] = [{**matcher, "hooks": [hook]}]
        trusted = [t for t in trusted if t[0] != "pre_tool_use"]
        trusted.append(("pre_tool_use", ASK_DIGESTS[asks]))
        wait = min(int(ask_wait) + ASK_SLACK, ASK_HOOK_TIMEOUT - ASK_SLACK)
        env.update({ASK_VAR: ask_url(url), ASK_WAIT_VAR: str(wait)})
    codex_home = Path(plan.env["CODEX_HOME"])
    config = codex_home / "config.toml"
    files = dict(plan.files)
    files[codex_home / HOOKS_FILE] = json.dumps({"hooks": hooks}, indent=2)
    files[config] = files.get(config, "") + _trust(codex_home / HOOKS_FILE, trusted)
    return replace(plan, env=env, files=files)


def ask_command() -> str:
    """The TUI's blocking ``PreToolUse`` hook: it posts the tool call Codex is about to make
    to the heartbeat endpoint's ``/ask`` and prints the answer
    (:mod:`fleet.sessions.hook_asks`), retrying through a restart of Fleetwarden. A
    constant (Codex trusts it by its hash): the URL, the token and how long to wait come
    from the environment. If Fleetwarden cannot answer in that time, the answer is no."""
    wait = f'"${ASK_WAIT_VAR}"'
    return f"{curl_ask(wait)} || printf '%s' {shlex.quote(UNASKED)}"


def _hooks() -> dict[str, list[dict[str, Any]]]:
    def hook(state: str) -> dict[str, Any]:
        return {"type": "command", "command": heartbeat_command(state), "timeout": HOOK_TIMEOUT}

    return {event: [{"hooks": [hook(state)]}] for event, (_, state, _) in HOOKS.items()}


def _trust(source: Path, trusted: list[tuple[str, str]]) -> str:
    tables = []
    for label, digest in trusted:
        key = json.dumps(f"{source}:{label}:0:0")  # a JSON string is a TOML basic string
        tables.append(f"\n[hooks.state.{key}]\ntrusted_hash = {json.dumps(digest)}\n")
    return "".join(tables)
