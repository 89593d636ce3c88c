"""The ``pi`` runtime: the pi coding agent, headless (``pi -p``) or its TUI.

Headless::

    pi -p PROMPT --provider anthropic [--model M] --mode json

``--mode json`` writes one event per line; the first, ``{"type": "session", "id": …}``,
names the session, which a follow-up continues with ``--session ID`` (``--continue``, the
directory's newest session, when none is known). On a terminal:
``pi --provider anthropic [--model M] [PROMPT]``.

pi's parser has no ``--``: a message starting with ``-`` is read as a flag and one starting
with ``@`` as a file to attach. Such a prompt is sent with one leading space, which pi
passes through as text.

Standard input must be ``/dev/null`` (the backend's business): ``pi -p`` reads all of a
piped stdin first, so on a pipe that never ends it waits forever.

pi ignores ``ANTHROPIC_BASE_URL``: the provider's URL (without ``/v1``) goes into
``<home>/.pi/agent/models.json`` (``PI_CODING_AGENT_DIR``). ``PI_OFFLINE=1`` stops its
start-up downloads and update checks. The API key comes only from the spec's ``secret_env``,
or is a placeholder when the proxy holds an account for it (pi will not start without one).

Permissions, asks and heartbeats: pi has no permission system; Fleetwarden's own extension
(:mod:`fleet.runtimes.gates`, loaded with ``--no-extensions --extension``) gates every tool
call by the spec's mode and rules, asks the operator where they say ask, and reports turns
as heartbeats. A ``read-only`` agent is also given only the read tools (``--tools``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fleet.accounts.placeholders import placeholder_token
from fleet.model import AgentSpec, LaunchPlan
from fleet.runtimes._cli import (
    CliRuntime,
    checked_model,
    checked_session,
    required_prompt,
    without_v1,
)
from fleet.runtimes.base import RuntimeContext
from fleet.runtimes.gates import gate_env, pi_args
from fleet.sessions.pi_rpc import NAME as PI_RPC
from fleet.transcript.events import StreamParser
from fleet.transcript.pi import PiStream

PROVIDER = "anthropic"


class PiRuntime(CliRuntime):
    """pi (``@mariozechner/pi-coding-agent``)."""

    name = "pi"

    def tui_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        prompt = (as_message(spec.prompt),) if spec.prompt else ()
        return (self._exe, *_provider_args(spec), *pi_args(spec), *prompt)

    def headless_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        message = as_message(required_prompt(spec, self.name))
        return (self._exe, "-p", message, *_provider_args(spec), *pi_args(spec), "--mode", "json")

    def resume_argv(self, spec: AgentSpec, session: str | None, text: str) -> tuple[str, ...]:
        resume = ("--session", checked_session(session)) if session else ("--continue",)
        argv = (self._exe, "-p", as_message(text), *_provider_args(spec), *pi_args(spec))
        return (*argv, "--mode", "json", *resume)

    def session_plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        """A live session (:mod:`fleet.sessions.pi_rpc`): ``pi --mode rpc``, one process for
        every turn, each turn written to its stdin by the session driver."""
        argv = (self._exe, "--mode", "rpc", *_provider_args(spec), *pi_args(spec))
        plan = self._launch_plan(spec, ctx, argv)
        return replace(plan, takes_input=True, session=PI_RPC)

    def event_session(self, event: Mapping[str, Any]) -> object:
        return event.get("id") if event.get("type") == "session" else None

    def stream_parser(self) -> StreamParser:
        return PiStream()

    def setup(self, spec: AgentSpec, ctx: RuntimeContext) -> tuple[dict[str, str], dict[Path, str]]:
        agent_dir = ctx.home / ".pi" / "agent"
        env = {"PI_OFFLINE": "1", "PI_CODING_AGENT_DIR": str(agent_dir), **gate_env(spec, ctx)}
        if PROVIDER in ctx.accounts:  # the proxy holds the account and puts in its credential
            env["ANTHROPIC_API_KEY"] = placeholder_token(spec.name)
        files = {}
        if PROVIDER in ctx.provider_urls:
            models = {"providers": {PROVIDER: {"baseUrl": without_v1(ctx.provider_urls[PROVIDER])}}}
            files[agent_dir / "models.json"] = json.dumps(models, indent=2)
        return env, files


def as_message(text: str) -> str:
    """``text`` as pi will read it as a message, not as a flag or a file to attach."""
    return " " + text if text.startswith(("-", "@")) else text


def _provider_args(spec: AgentSpec) -> tuple[str, ...]:
    model = checked_model(spec)
    return ("--provider", PROVIDER, *(("--model", model) if model else ()))
