"""The ``codex`` runtime: OpenAI's Codex CLI, as a live session (``codex app-server``),
headless (``codex exec``) or its TUI.

Headless, an agent is a live session: ``codex app-server`` speaks JSON-RPC on its stdin and
stdout (:mod:`fleet.sessions.codex`), one process serves every turn, and Codex asks before
the commands and edits the agent's permission mode does not let pass. Its first line
naming the session is ``{"method": "thread/started", "params": {"thread": {"id": …}}}``.

Where a run is one turn (a follow-up after the live process ended)::

    codex exec --skip-git-repo-check --json [-m M] -- PROMPT

``--json`` writes one event per line; the first, ``{"type": "thread.started",
"thread_id": …}``, names the session. ``codex exec`` never asks (its approval policy is
``never``): only the agent's ``deny:`` rules hold there. A follow-up resumes it:
``codex exec resume --skip-git-repo-check --json [-m M] -- SESSION TEXT`` (``--last``, the
directory's newest session, when none is known). On a terminal: ``codex [-m M] [-- PROMPT]``.
Values after ``--`` are never read as flags or subcommands.

The agent's ``allow:`` and ``deny:`` rules that Codex can say itself are written as its
execpolicy rules (:mod:`fleet.runtimes.codex_rules`), which both paths obey.

Standard input of ``codex exec`` must be ``/dev/null`` (the backend's business): it appends
whatever stdin holds to the prompt, so on a pipe that never ends it waits forever.

Codex ignores ``OPENAI_BASE_URL``: the provider's URL goes into
``<home>/.codex/config.toml`` (``CODEX_HOME``) as a custom provider on the Responses API.
That file also marks the workdir an untrusted project (:func:`config_toml`), so that its
own ``.codex/`` (config, rules, hooks) decides nothing.

MCP servers and skills (:mod:`fleet.runtimes.mcp_launch`, :mod:`fleet.runtimes.skill_copies`):
each granted server is a ``[mcp_servers.NAME]`` table of ``config.toml`` at the agent's MCP
door, ``required`` (a run has its tools or fails naming the server), its bearer token read
from ``FLEETWARDEN_HEARTBEAT_TOKEN`` (the run's own token, set when it has servers); the
model calls a server's tools in the namespace ``mcp__NAME`` with ``-`` turned to ``_``
(``my-docs`` → ``mcp__my_docs``). Skills are copied into ``$CODEX_HOME/skills``. Codex also
reads the workdir's ``.agents/skills``, even in this untrusted project, and nothing turns
that off: those skills are the repository's text, as its ``AGENTS.md`` is.

* On a ChatGPT login (an account of provider ``chatgpt``): the provider
  ``requires_openai_auth`` and points at the proxy's ``chatgpt`` route as it would at
  ChatGPT's host (``…/backend-api/codex``: Codex then sends ``POST …/responses``, no
  ``/v1``; ``chatgpt_base_url`` ``…/backend-api/``), and ``auth.json`` in
  ``CODEX_HOME`` holds a placeholder login; its refresh goes to the proxy
  (``CODEX_REFRESH_TOKEN_URL_OVERRIDE``), which answers with placeholders. The real login
  never leaves Fleetwarden's state dir.
* On an API key: ``env_key`` names ``OPENAI_API_KEY``, which holds a placeholder when an
  account covers ``openai``; without one (metering off) the variable the spec's
  ``secret_env`` names — ``OPENAI_API_KEY`` when listed, else its first entry. The key
  itself is never in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet.accounts.model import CHATGPT
from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, LaunchPlan, PermissionMode
from fleet.placeholders import placeholder_login, placeholder_token
from fleet.runtimes._cli import (
    CliRuntime,
    checked_model,
    checked_session,
    required_prompt,
    with_v1,
)
from fleet.runtimes.base import RuntimeContext
from fleet.runtimes.codex_hooks import ASK_ALL, ASK_SHELL, with_heartbeats
from fleet.runtimes.codex_rules import RULES_FILE, execpolicy
from fleet.runtimes.mcp_launch import TOKEN_VAR, codex_tables, door_access, mcp_json
from fleet.runtimes.skill_copies import skill_files
from fleet.sessions.codex import NAME as SESSION
from fleet.transcript.codex import CodexStream
from fleet.transcript.events import StreamParser

PROVIDER_ID = "fleetwarden"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_KEY_VAR = "OPENAI_API_KEY"
HEADLESS_FLAGS = ("--skip-git-repo-check", "--json")
# Keeps Codex from calling anything but the provider (update checks, analytics, OTel).
QUIET_CONFIG = """\
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
apps = false

[otel]
exporter = "none"
metrics_exporter = "none"
"""

# What Codex's TUI asks in chat, by mode, through its PreToolUse hook: Codex 0.169's TUI
# takes only the approval policies ``on-request`` and ``never`` (``untrusted`` is refused),
# and inside Fleetwarden's sandbox it then asks nothing of its own.
TUI_ASKS = {
    PermissionMode.ASK: ASK_ALL,  # every command and every edit
    PermissionMode.EDITS: ASK_SHELL,  # every shell command; edits pass
    PermissionMode.READ_ONLY: ASK_ALL,
}

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class CodexRuntime(CliRuntime):
    """Codex CLI (``@openai/codex``)."""

    name = "codex"

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        if ctx.tty:  # its TUI: Codex's hooks report that it lives, and ask in chat
            asks = TUI_ASKS.get(spec.permissions)
            plan = super().plan(spec, ctx)
            return with_heartbeats(plan, ctx, asks, spec.approval_timeout)
        plan = self._launch_plan(spec, ctx, self.session_argv(spec), spec.prompt)
        return replace(plan, takes_input=True, session=SESSION, prompt=spec.prompt)

    def follow_up(
        self, spec: AgentSpec, ctx: RuntimeContext, session: str | None, text: str
    ) -> LaunchPlan | None:
        plan = super().follow_up(spec, ctx, session, text)
        return None if plan is None else with_heartbeats(plan, ctx)

    def session_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        """The live session: the model, the approval policy and the sandbox go with the
        thread it starts (:func:`fleet.sessions.codex.protocol`)."""
        checked_model(spec)
        return (self._exe, "app-server")

    def tui_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        prompt = ("--", spec.prompt) if spec.prompt else ()
        return (self._exe, *_model_args(spec), *prompt)

    def headless_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        model = _model_args(spec)
        return (self._exe, "exec", *HEADLESS_FLAGS, *model, "--", required_prompt(spec, self.name))

    def resume_argv(self, spec: AgentSpec, session: str | None, text: str) -> tuple[str, ...]:
        head = (self._exe, "exec", "resume", *HEADLESS_FLAGS, *_model_args(spec))
        if session:
            return (*head, "--", checked_session(session), text)
        return (*head, "--last", "--", text)

    def skills_folder(self, ctx: RuntimeContext) -> Path:
        return ctx.home / ".codex" / "skills"  # $CODEX_HOME/skills

    def event_session(self, event: Mapping[str, Any]) -> object:
        if event.get("method") == "thread/started":  # the live session's
            params = event.get("params")
            thread = params.get("thread") if isinstance(params, Mapping) else None
            return thread.get("id") if isinstance(thread, Mapping) else None
        return event.get("thread_id") if event.get("type") == "thread.started" else None

    def stream_parser(self) -> StreamParser:
        return CodexStream()

    def setup(self, spec: AgentSpec, ctx: RuntimeContext) -> tuple[dict[str, str], dict[Path, str]]:
        codex_home = ctx.home / ".codex"
        env = {"CODEX_HOME": str(codex_home)}
        files = {codex_home / "config.toml": config_toml(spec, ctx)}
        rules = execpolicy(spec.allow, spec.deny)
        if rules is not None:
            files[codex_home / "rules" / RULES_FILE] = rules
        if spec.mcp:  # its servers' bearer token: the run's own, from the environment
            env[TOKEN_VAR] = door_access(spec, ctx)[1]
            files.update(mcp_json(spec, ctx))
        files.update(skill_files(spec, ctx, self.skills_folder(ctx)))
        chatgpt = ctx.provider_urls.get(CHATGPT)
        if ctx.accounts.get(CHATGPT) == "chatgpt_subscription" and chatgpt is not None:
            env["CODEX_REFRESH_TOKEN_URL_OVERRIDE"] = chatgpt.rstrip("/") + "/oauth/token"
            login = placeholder_login(spec.name, ctx.started_at or _EPOCH)
            files[codex_home / "auth.json"] = json.dumps(login, indent=2)
        elif "openai" in ctx.accounts or "openai" in ctx.offline:  # the stand-in takes any
            env[DEFAULT_KEY_VAR] = placeholder_token(spec.name)
        return env, files


def config_toml(spec: AgentSpec, ctx: RuntimeContext) -> str:
    """Codex's ``config.toml``: quiet, and on the provider's URL when there is one. An
    agent in Fleetwarden's sandbox runs its commands without Codex's own: that sandbox is
    the boundary, and Codex's (bubblewrap again, where it is installed) cannot be set up
    inside it — its commands would all fail with ``execvp codex-linux-sandbox``. The
    workdir is an untrusted project (:func:`untrusted_project`), but for a TUI in a
    workdir with no project config (where Codex's TUI would stop at a screen saying so)."""
    mode = 'sandbox_mode = "danger-full-access"\n' if spec.sandbox == "bwrap" else ""
    project = ""
    if not ctx.tty or project_configs(ctx.workdir):
        project = untrusted_project(ctx.workdir)
    return mode + _config_body(spec, ctx) + project + codex_tables(spec, ctx)


def untrusted_project(workdir: Path) -> str:
    """The ``config.toml`` tables that mark ``workdir`` an untrusted project, so that Codex
    loads none of its project layers (``.codex/config.toml``, ``.codex/rules/``, hooks)
    from the workdir or its parents up to the repository's root: a repository cannot
    change the approval policy, the sandbox or the rules. Without a trust level of its own,
    ``codex app-server`` trusts the directory of a thread it starts and loads them
    (measured on 0.169)."""
    paths = dict.fromkeys([str(workdir), str(workdir.resolve())])
    # JSON string literals are valid TOML basic strings (same quoting and escapes).
    return "".join(f'\n[projects.{json.dumps(p)}]\ntrust_level = "untrusted"\n' for p in paths)


def project_configs(workdir: Path) -> list[Path]:
    """The ``.codex`` folders Codex would read as project config for ``workdir``: in it and
    its parents up to the repository's root (the nearest with ``.git``), or in the workdir
    alone outside a repository. Codex's TUI in an untrusted folder first shows a screen
    that waits for a key; without a trust level it asks whether to trust the folder only
    when there is such config (measured on 0.169), and answering yes would load it."""
    workdir = workdir.resolve()
    chain = [workdir, *workdir.parents]
    root = next((i for i, d in enumerate(chain) if (d / ".git").exists()), 0)
    return [d / ".codex" for d in chain[: root + 1] if (d / ".codex").is_dir()]


def _config_body(spec: AgentSpec, ctx: RuntimeContext) -> str:
    chatgpt = ctx.provider_urls.get(CHATGPT)
    if ctx.accounts.get(CHATGPT) == "chatgpt_subscription" and chatgpt is not None:
        # Under /backend-api, as on ChatGPT's own host: Codex then uses the same paths for
        # its account calls as it does there, and the proxy only swaps the host.
        base = json.dumps(chatgpt.rstrip("/") + "/backend-api/codex")
        quoted = json.dumps(chatgpt.rstrip("/") + "/backend-api/")
        table = f"""
[model_providers.{PROVIDER_ID}]
name = "Fleetwarden"
base_url = {base}
requires_openai_auth = true
wire_api = "responses"
supports_websockets = false
"""
        head = (
            f'model_provider = "{PROVIDER_ID}"\nchatgpt_base_url = {quoted}\n'
            'cli_auth_credentials_store = "file"\n'
        )
        return head + QUIET_CONFIG + table
    url = ctx.provider_urls.get("openai")
    if url is None:
        return QUIET_CONFIG
    key_var = DEFAULT_KEY_VAR if "openai" in ctx.accounts else key_variable(spec)
    if not _ENV_NAME.fullmatch(key_var):
        raise LaunchFailed(f"{spec.name}: {key_var!r} is not an environment variable name")
    # JSON string literals are valid TOML basic strings (same quoting and escapes).
    table = f"""
[model_providers.{PROVIDER_ID}]
name = "Fleetwarden"
base_url = {json.dumps(with_v1(url))}
env_key = {json.dumps(key_var)}
wire_api = "responses"
supports_websockets = false
"""
    return f'model_provider = "{PROVIDER_ID}"\n' + QUIET_CONFIG + table


def key_variable(spec: AgentSpec) -> str:
    """The variable Codex reads the API key from (without an account: metering off)."""
    if DEFAULT_KEY_VAR in spec.secret_env or not spec.secret_env:
        return DEFAULT_KEY_VAR
    return spec.secret_env[0]


def _model_args(spec: AgentSpec) -> tuple[str, ...]:
    model = checked_model(spec)
    return ("-m", model) if model else ()
