"""The ``codex`` runtime: OpenAI's Codex CLI, headless (``codex exec``) or its TUI.

Headless::

    codex exec --skip-git-repo-check --json [-m M] -- PROMPT

``--json`` writes one event per line; the first, ``{"type": "thread.started",
"thread_id": …}``, names the session. A follow-up resumes it:
``codex exec resume --skip-git-repo-check --json [-m M] -- SESSION TEXT`` (``--last``, the
directory's newest session, when none is known). On a terminal: ``codex [-m M] [-- PROMPT]``.
Values after ``--`` are never read as flags or subcommands.

Standard input must be ``/dev/null`` (the backend's business): ``codex exec`` appends
whatever stdin holds to the prompt, so on a pipe that never ends it waits forever.

Codex ignores ``OPENAI_BASE_URL``: the provider's URL goes into
``<home>/.codex/config.toml`` (``CODEX_HOME``) as a custom provider on the Responses API,
with ``env_key`` naming the variable that holds the key — ``OPENAI_API_KEY`` when the
spec's ``secret_env`` lists it, else its first entry. The key itself is never in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec
from fleet.runtimes._cli import (
    CliRuntime,
    checked_model,
    checked_session,
    required_prompt,
    with_v1,
)
from fleet.runtimes.base import RuntimeContext

PROVIDER_ID = "fleetwarden"
DEFAULT_KEY_VAR = "OPENAI_API_KEY"
HEADLESS_FLAGS = ("--skip-git-repo-check", "--json")
# Keeps Codex from calling anything but the provider (update checks, analytics, OTel).
QUIET_CONFIG = """\
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[otel]
exporter = "none"
metrics_exporter = "none"
"""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class CodexRuntime(CliRuntime):
    """Codex CLI (``@openai/codex``)."""

    name = "codex"

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

    def event_session(self, event: Mapping[str, Any]) -> object:
        return event.get("thread_id") if event.get("type") == "thread.started" else None

    def setup(self, spec: AgentSpec, ctx: RuntimeContext) -> tuple[dict[str, str], dict[Path, str]]:
        codex_home = ctx.home / ".codex"
        return {"CODEX_HOME": str(codex_home)}, {codex_home / "config.toml": config_toml(spec, ctx)}


def config_toml(spec: AgentSpec, ctx: RuntimeContext) -> str:
    """Codex's ``config.toml``: quiet, and on the provider's URL when there is one."""
    url = ctx.provider_urls.get("openai")
    if url is None:
        return QUIET_CONFIG
    key_var = key_variable(spec)
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
    """The variable Codex reads the API key from."""
    if DEFAULT_KEY_VAR in spec.secret_env or not spec.secret_env:
        return DEFAULT_KEY_VAR
    return spec.secret_env[0]


def _model_args(spec: AgentSpec) -> tuple[str, ...]:
    model = checked_model(spec)
    return ("-m", model) if model else ()
