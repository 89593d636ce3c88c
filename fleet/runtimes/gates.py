"""Fleetwarden's gate inside pi and opencode: their agents' permission policy, asks and
heartbeats, as the CLIs' own extension mechanisms run them.

Neither CLI can ask a controller in its headless mode (pi has no permission system;
``opencode run`` rejects every ask by itself), but both run code of ours before each tool
call: a pi extension's ``tool_call`` handler, an opencode plugin's ``tool.execute.before``.
That code is shipped with Fleetwarden, in :data:`GATES_DIR` (``ask.mjs`` shared, ``pi.mjs``,
``opencode.mjs``), which every sandbox sees read-only with the rest of Fleetwarden's
package: nothing the agent can write changes it. It applies the agent's
:class:`~fleet.model.PermissionMode` and ``allow``/``deny`` rules (:mod:`fleet.permissions.rules`
semantics), asks the operator through the ask door (:mod:`fleet.approvals.ask_door`) where they say
ask, blocking the tool until the answer, and posts heartbeats (working on each turn and
tool, waiting at a turn's end and while an ask waits).

What it is told comes from the CLI's environment, which the agent cannot change:
``FLEETWARDEN_HEARTBEAT_URL`` / ``FLEETWARDEN_HEARTBEAT_TOKEN`` (checked as Claude's hooks
check them) and ``FLEETWARDEN_PERMISSIONS`` (:func:`gate_env`). ``node ask.mjs`` is also a
hook command: one ask as JSON on stdin, the answer as JSON on stdout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, PermissionMode
from fleet.permissions.rules import BadRule, parse_rule
from fleet.runtimes.base import RuntimeContext

GATES_DIR: Final = Path(__file__).resolve().parents[1] / "gates"
ASK_CLIENT: Final = GATES_DIR / "ask.mjs"
PI_EXTENSION: Final = GATES_DIR / "pi.mjs"
OPENCODE_PLUGIN: Final = GATES_DIR / "opencode.mjs"
URL_VAR: Final = "FLEETWARDEN_HEARTBEAT_URL"
TOKEN_VAR: Final = "FLEETWARDEN_HEARTBEAT_TOKEN"
POLICY_VAR: Final = "FLEETWARDEN_PERMISSIONS"
PI_READ_TOOLS: Final = ("read", "grep", "find", "ls")

_HEARTBEAT_URL = re.compile(r"http://127\.0\.0\.1:[0-9]{1,5}/heartbeat/[a-z][a-z0-9-]{0,31}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")
# A portable tool name, as opencode's ``permission`` map names the same tool.
_OPENCODE_TOOL = {"Bash": "bash", "Edit": "edit", "Write": "edit", "WebFetch": "webfetch"}


def gate_env(spec: AgentSpec, ctx: RuntimeContext) -> dict[str, str]:
    """The variables the gate reads: the policy, and the door when there is one."""
    policy = {
        "mode": spec.permissions.value,
        "allow": list(spec.allow),
        "deny": list(spec.deny),
        "workdir": str(ctx.workdir),
    }
    if spec.mcp:  # their tools (``<server>_<tool>``) pass the gate: the MCP door asks
        policy["mcp"] = sorted({grant.server for grant in spec.mcp})
    env = {POLICY_VAR: json.dumps(policy, separators=(",", ":"))}
    if ctx.heartbeat_url and ctx.heartbeat_token:
        if not _HEARTBEAT_URL.fullmatch(ctx.heartbeat_url):
            raise LaunchFailed("refusing a heartbeat URL that is not http://127.0.0.1:PORT/…")
        if not _TOKEN.fullmatch(ctx.heartbeat_token):
            raise LaunchFailed("refusing a heartbeat token that is not URL-safe base64")
        env[URL_VAR], env[TOKEN_VAR] = ctx.heartbeat_url, ctx.heartbeat_token
    return env


def pi_args(spec: AgentSpec) -> tuple[str, ...]:
    """pi's flags for the gate: only our extension (none an agent could drop in its
    workdir's ``.pi/extensions``), and only the read tools for a ``read-only`` agent."""
    args = ("--no-extensions", "--extension", str(PI_EXTENSION))
    if spec.permissions is PermissionMode.READ_ONLY:
        return (*args, "--tools", ",".join(PI_READ_TOOLS))
    return args


def opencode_permission(spec: AgentSpec) -> dict[str, Any]:
    """opencode's own ``permission`` map for ``spec``: what the plugin lets through runs
    (``opencode run`` would reject any native ask), a ``read-only`` agent may not edit,
    run commands or fetch, and ``deny`` rules are denied natively too (opencode's last
    matching pattern wins, so ``*`` comes first)."""
    base = "deny" if spec.permissions is PermissionMode.READ_ONLY else "allow"
    tools: dict[str, dict[str, str]] = {name: {"*": base} for name in ("bash", "edit", "webfetch")}
    for text, action in [*((r, "allow") for r in spec.allow), *((r, "deny") for r in spec.deny)]:
        try:
            rule = parse_rule(text)
        except BadRule:
            continue
        name = _OPENCODE_TOOL.get(rule.tool)
        if name is not None:
            tools[name][rule.arg if rule.arg is not None else "*"] = action
    permission: dict[str, Any] = {"external_directory": "allow"}
    for name, patterns in tools.items():
        permission[name] = patterns["*"] if list(patterns) == ["*"] else patterns
    return permission
