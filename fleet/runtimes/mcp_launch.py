"""An agent's MCP servers as its CLI is given them at launch: each granted server at the
agent's MCP door (:mod:`fleet.mcp.door.routes`), on the same heartbeat endpoint its heartbeats,
``fw-forge`` and ``fw-msg`` reach, authenticated with its run's own token.

Each grant of ``spec.mcp`` is one server at ``<the heartbeat endpoint>/mcp/<agent>/<server>``
(:func:`~fleet.mcp.door.routes.mcp_path`), taken from the run's heartbeat URL as the launch
context gives it: on this machine, in a locked sandbox (whose door to the heartbeat
endpoint answers at that same URL) and on an SSH host (the heartbeat forward's port there)
alike. The CLI sends ``Authorization: Bearer <run token>``; the server's own URL and
credential are never written for the agent: the door holds them. Per CLI (measured in
``docs/mcp-clis.md``):

* every runtime: ``$HOME/.fleetwarden/mcp.json`` (mode 0600), in the ``.mcp.json`` shape
  ``{"mcpServers": {NAME: {"type": "http", "url": …, "headers": {"Authorization":
  "Bearer …"}}}}``, for a ``command`` agent and any script an agent runs;
* Claude Code: that file, given as ``--mcp-config FILE`` (the token is never in argv,
  which ``/proc`` shows), ``--strict-mcp-config`` kept;
* Codex: ``[mcp_servers.NAME]`` tables in the ``config.toml`` Fleetwarden writes, the
  token read from ``FLEETWARDEN_HEARTBEAT_TOKEN`` (``bearer_token_env_var``), its tools
  approved by Codex itself (``default_tools_approval_mode``): the door is the one place that
  asks, by the agent's mode and rules;
* opencode: the ``mcp`` block of its inline config, ``type: "remote"``.

**How long a call may wait.** The door holds a call while it is asked in chat (up to the
agent's ``approval_timeout``), then the server has its ``timeout`` (at most
:data:`~fleet.mcp.config.schema.MAX_TIMEOUT`): each CLI waits for a call at least that long plus a
margin (:func:`call_seconds`), or a slow approval would fail on the CLI's side — Claude
Code's ``MCP_TOOL_TIMEOUT`` (its POST's own timeout, 60 s unset) and
``CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT`` (5 min of silence), Codex's ``tool_timeout_sec``
(60 s), opencode's per-server ``timeout`` (ms). The door still ends every call in time.

A run of an agent granted servers needs the heartbeat endpoint: without one the launch is
refused, saying so. pi is given none (:data:`~fleet.mcp.config.grants.NO_MCP_RUNTIMES`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Final

from fleet.errors import LaunchFailed
from fleet.mcp.config.schema import MAX_TIMEOUT
from fleet.mcp.model import mcp_path
from fleet.model import AgentSpec
from fleet.runtimes.base import RuntimeContext

MCP_FILE: Final = ".fleetwarden/mcp.json"
"""Where every agent granted MCP servers finds them, under its ``HOME``."""
TOKEN_VAR: Final = "FLEETWARDEN_HEARTBEAT_TOKEN"
"""The variable holding the run's token (Codex reads its bearer token from it)."""
CODEX_STARTUP_SECONDS: Final = 30
"""How long Codex waits for a server (each is ``required``: a run has its tools, or fails
saying which server did not answer)."""

CALL_MARGIN_SECONDS: Final = 60
"""What a CLI waits for a call past the longest the door may hold it."""

_ENDPOINT = re.compile(r"(http://127\.0\.0\.1:[0-9]{1,5})/heartbeat/[a-z][a-z0-9-]{0,31}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")


def call_seconds(spec: AgentSpec) -> int:
    """How long ``spec``'s CLI waits for one MCP call: the agent's ``approval_timeout``
    (the door's ask), the longest a server may be given (:data:`MAX_TIMEOUT`; the launch does
    not know each server's own), and :data:`CALL_MARGIN_SECONDS`."""
    return math.ceil(spec.approval_timeout + MAX_TIMEOUT + CALL_MARGIN_SECONDS)


def claude_env(spec: AgentSpec) -> dict[str, str]:
    """Claude Code's variables for ``spec``'s MCP calls (none without grants): each call's
    timeout, and its silence's, in milliseconds (:func:`call_seconds`)."""
    if not spec.mcp:
        return {}
    ms = str(call_seconds(spec) * 1000)
    return {"MCP_TOOL_TIMEOUT": ms, "CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT": ms}


def door_urls(spec: AgentSpec, ctx: RuntimeContext) -> dict[str, str]:
    """Each server granted to ``spec``, by name → its URL at the agent's MCP door (empty
    without grants). Refused without a heartbeat endpoint, or with one that is not
    loopback, or a token that is not URL-safe."""
    if not spec.mcp:
        return {}
    url, _ = door_access(spec, ctx)
    return {grant.server: url + mcp_path(spec.name, grant.server) for grant in spec.mcp}


def door_access(spec: AgentSpec, ctx: RuntimeContext) -> tuple[str, str]:
    """The heartbeat endpoint's origin (``http://127.0.0.1:PORT``) and the run's token."""
    if not (ctx.heartbeat_url and ctx.heartbeat_token):
        servers = ", ".join(grant.server for grant in spec.mcp)
        raise LaunchFailed(
            f"{spec.name} cannot start: it is granted MCP servers ({servers}), which it "
            "reaches through Fleetwarden's heartbeat endpoint, and this launch has none — "
            "run it under the fleet (`fleetwarden run`), or take `mcp:` off the agent"
        )
    origin = _ENDPOINT.fullmatch(ctx.heartbeat_url)
    if origin is None:
        raise LaunchFailed("refusing a heartbeat URL that is not http://127.0.0.1:PORT/…")
    if not _TOKEN.fullmatch(ctx.heartbeat_token):
        raise LaunchFailed("refusing a heartbeat token that is not URL-safe base64")
    return origin.group(1), ctx.heartbeat_token


def mcp_file(home: Path) -> Path:
    """``$HOME/.fleetwarden/mcp.json`` of the agent whose home is ``home``."""
    return home / MCP_FILE


def mcp_json(spec: AgentSpec, ctx: RuntimeContext) -> dict[Path, str]:
    """``$HOME/.fleetwarden/mcp.json`` for ``spec``'s run, as a file to write (none without
    grants): the ``.mcp.json`` shape Claude Code, scripts and SDKs read, every server of
    ``type: "http"`` (Claude Code drops one without a type) with the run's token."""
    urls = door_urls(spec, ctx)
    if not urls:
        return {}
    _, token = door_access(spec, ctx)
    bearer = {"Authorization": f"Bearer {token}"}
    servers = {name: {"type": "http", "url": url, "headers": bearer} for name, url in urls.items()}
    return {mcp_file(ctx.home): json.dumps({"mcpServers": servers}, indent=2) + "\n"}


def codex_tables(spec: AgentSpec, ctx: RuntimeContext) -> str:
    """The ``[mcp_servers.NAME]`` tables of Codex's ``config.toml`` (empty without grants).
    The token is not in the file: Codex reads it from :data:`TOKEN_VAR`. Codex calls the
    tools of ``my-srv`` in the namespace ``mcp__my_srv`` (``-`` becomes ``_``)."""
    tables = []
    for name, url in door_urls(spec, ctx).items():
        # JSON string literals are valid TOML basic strings; a server's name is a bare key.
        tables.append(
            f"\n[mcp_servers.{name}]\nurl = {json.dumps(url)}\n"
            f"bearer_token_env_var = {json.dumps(TOKEN_VAR)}\nrequired = true\n"
            f"startup_timeout_sec = {CODEX_STARTUP_SECONDS}\n"
            f"tool_timeout_sec = {call_seconds(spec)}\n"
            # The door asks (the agent's mode and rules, in chat): Codex's own approval
            # would refuse every call in `codex exec` outside Fleetwarden's sandbox.
            'default_tools_approval_mode = "approve"\n'
        )
    return "".join(tables)


def opencode_mcp(spec: AgentSpec, ctx: RuntimeContext) -> dict[str, Any]:
    """The ``mcp`` block of opencode's inline config (empty without grants)."""
    urls = door_urls(spec, ctx)
    if not urls:
        return {}
    _, token = door_access(spec, ctx)
    bearer = {"Authorization": f"Bearer {token}"}
    ms = call_seconds(spec) * 1000  # each request's timeout, tools/call's too
    return {
        name: {"type": "remote", "url": url, "headers": bearer, "timeout": ms}
        for name, url in urls.items()
    }
