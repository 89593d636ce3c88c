"""The ``opencode`` runtime: opencode, headless (``opencode run``) or its TUI.

Headless::

    opencode run --format json [--model PROVIDER/MODEL] -- PROMPT

``--format json`` writes one event per line, each with the ``sessionID``; a follow-up
continues it with ``--session ID`` (``--continue``, the newest session, when none is
known). On a terminal: ``opencode [--model PROVIDER/MODEL] [--prompt=PROMPT]``.
A prompt is never read as a flag: it follows ``--``, or is glued to ``--prompt=``.
A model without a provider prefix is taken to be Anthropic's.

Standard input must be ``/dev/null`` (the backend's business): ``opencode run`` reads a
piped stdin into the message, so on a pipe that never ends it waits forever.

Configuration is inline, in ``OPENCODE_CONFIG_CONTENT``: the provider's URL (ending in
``/v1``), and the hidden title request turned off (it would spend tokens that appear
nowhere but at a proxy). The ``OPENCODE_DISABLE_*`` switches stop model-list fetches,
updates, default plugins, LSP downloads and sharing; npm's ``offline`` (and ``fetch-retries``
at 0) makes the install of ``@opencode-ai/plugin`` it starts in its config dir (which it
awaits before loading a plugin) fail at once, instead of fetching from the registry for 30 s
or more where one is in reach, or after npm's two retries, 10 s and then 60 s later, where
none is (a sandbox with no route out). Fleetwarden's plugin needs nothing from it.
opencode retries a failing provider forever: the spec's ``timeout`` is what ends such a
run. The API key comes only from the spec's ``secret_env``, or is a placeholder when the
proxy holds an account for it.

Permissions, asks and heartbeats: Fleetwarden's own plugin (:mod:`fleet.runtimes.gates`,
named in the inline config; ``--pure`` would load no plugin at all) gates every tool call
by the spec's mode and rules, asks the operator where they say ask, and reports the
session's work as heartbeats; opencode's own ``permission`` map says the same natively
(deny rules, a read-only agent), with nothing left for ``opencode run`` to ask, as it
would reject every ask by itself. Project config is off (``OPENCODE_DISABLE_PROJECT_CONFIG``).

MCP servers and skills (:mod:`fleet.runtimes.mcp_launch`, :mod:`fleet.runtimes.skill_copies`):
each granted server is in the inline config's ``mcp`` block, ``type: "remote"`` at the
agent's MCP door with the run's token; its tools are ``<server>_<tool>``. Skills are copied
into ``~/.config/opencode/skills``, and ``OPENCODE_DISABLE_EXTERNAL_SKILLS`` keeps the
workdir's ``.claude/skills`` and ``.agents/skills`` (and the home's) out. The home's
``~/.config/opencode`` is emptied at each launch first: opencode would run a plugin or a
custom tool, or merge an ``opencode.json``, that the agent wrote there in an earlier turn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet.model import AgentSpec
from fleet.placeholders import placeholder_token
from fleet.runtimes._cli import (
    CliRuntime,
    checked_model,
    checked_session,
    required_prompt,
    with_v1,
)
from fleet.runtimes.base import RuntimeContext
from fleet.runtimes.gates import OPENCODE_PLUGIN, gate_env, opencode_permission
from fleet.runtimes.mcp_launch import mcp_json, opencode_mcp
from fleet.runtimes.skill_copies import skill_files
from fleet.transcript.events import StreamParser
from fleet.transcript.opencode import OpencodeStream

PROVIDER = "anthropic"
HEADLESS_FLAGS = ("--format", "json")
QUIET_ENV = {
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    # Only the inline config: none an agent could write into its workdir's .opencode/.
    "OPENCODE_DISABLE_PROJECT_CONFIG": "1",
    # Skills from its config dir alone, never the workdir's .claude/ or .agents/skills.
    "OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",
    # Its config dir's dependency install: never from the registry (it took 30 s or more
    # there, where a registry is in reach), and one try, not 70 s of retries, if it is.
    "npm_config_offline": "true",
    "npm_config_fetch_retries": "0",
}
CONFIG_DIR = ".config/opencode"  # under HOME: emptied at each launch (its skills put back)
SKILLS_DIR = f"{CONFIG_DIR}/skills"  # read with the switches above


class OpencodeRuntime(CliRuntime):
    """opencode (``opencode-ai``)."""

    name = "opencode"

    def tui_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        prompt = (f"--prompt={spec.prompt}",) if spec.prompt else ()
        return (self._exe, *_model_args(spec), *prompt)

    def headless_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        model = _model_args(spec)
        return (self._exe, "run", *HEADLESS_FLAGS, *model, "--", required_prompt(spec, self.name))

    def resume_argv(self, spec: AgentSpec, session: str | None, text: str) -> tuple[str, ...]:
        resume = ("--session", checked_session(session)) if session else ("--continue",)
        return (self._exe, "run", *HEADLESS_FLAGS, *_model_args(spec), *resume, "--", text)

    def event_session(self, event: Mapping[str, Any]) -> object:
        return event.get("sessionID")

    def stream_parser(self) -> StreamParser:
        return OpencodeStream()

    def setup(self, spec: AgentSpec, ctx: RuntimeContext) -> tuple[dict[str, str], dict[Path, str]]:
        inline = json.dumps(config(ctx, spec), separators=(",", ":"))
        env = {**QUIET_ENV, **gate_env(spec, ctx), "OPENCODE_CONFIG_CONTENT": inline}
        if PROVIDER in ctx.accounts:  # the proxy holds the account and puts in its credential
            env["ANTHROPIC_API_KEY"] = placeholder_token(spec.name)
        files = {**mcp_json(spec, ctx), **skill_files(spec, ctx, self.skills_folder(ctx))}
        return env, files

    def skills_folder(self, ctx: RuntimeContext) -> Path:
        return ctx.home / SKILLS_DIR

    def fresh_folders(self, ctx: RuntimeContext) -> tuple[Path, ...]:
        # opencode loads and runs, unasked, the plugins and tools of its home's config dir,
        # and merges its opencode.json: an agent could write them there. Only Fleetwarden's
        # skills belong in it, copied afresh.
        return (ctx.home / CONFIG_DIR,)


def config(ctx: RuntimeContext, spec: AgentSpec) -> dict[str, Any]:
    """opencode's inline configuration: the provider, and the gate with the native
    permission rules it works with."""
    settings: dict[str, Any] = {
        "autoupdate": False,
        "share": "disabled",
        "agent": {"title": {"disable": True}},
        "plugin": [OPENCODE_PLUGIN.as_uri()],
        "permission": opencode_permission(spec),
    }
    if PROVIDER in ctx.provider_urls:
        base_url = with_v1(ctx.provider_urls[PROVIDER])
        settings["provider"] = {PROVIDER: {"options": {"baseURL": base_url}}}
    servers = opencode_mcp(spec, ctx)
    if servers:
        settings["mcp"] = servers
    return settings


def _model_args(spec: AgentSpec) -> tuple[str, ...]:
    model = checked_model(spec)
    if model is None:
        return ()
    return ("--model", model if "/" in model else f"{PROVIDER}/{model}")
