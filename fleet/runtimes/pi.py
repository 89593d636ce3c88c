"""The ``pi`` runtime: the pi coding agent, headless in a live session (``pi --mode rpc``)
or its TUI. An agent granted MCP servers is refused (no MCP extension of pi is pinned);
its skills are copied into ``$PI_CODING_AGENT_DIR/skills`` and each is named with
``--skill`` after ``--no-skills``: pi reads those alone, never the workdir's ``.pi/skills``
or ``.agents/skills`` nor the home's ``~/.agents/skills``, which an agent can write.

Headless::

    pi --mode rpc --provider anthropic [--model M]

is a live session (:mod:`fleet.sessions.pi_rpc`): the prompt is its first turn, written
on its stdin by the session driver, and ``send`` is a next turn of the same process while
it runs. Its output is pi's events, one per line (as ``--mode json`` writes them); the
``get_state`` response the session asks for first names the session, which a follow-up
process continues with ``--session ID`` (``--continue``, the directory's newest session,
when none is known). On a terminal: ``pi --provider anthropic [--model M] [PROMPT]``.

pi's parser has no ``--``: on a terminal, a prompt starting with ``-`` would be read as a
flag and one starting with ``@`` as a file to attach; such a prompt is sent with one
leading space, which pi passes through as text.

pi ignores ``ANTHROPIC_BASE_URL``: the provider's URL (without ``/v1``) goes into
``<home>/.pi/agent/models.json`` (``PI_CODING_AGENT_DIR``). ``PI_OFFLINE=1`` stops its
start-up downloads and update checks. The API key comes only from the spec's ``secret_env``,
or is a placeholder when the proxy holds an account for it (pi will not start without one).

Permissions, asks and heartbeats: pi has no permission system; Fleetwarden's own extension
(:mod:`fleet.runtimes.gates`, loaded with ``--no-extensions --extension``) gates every tool
call by the spec's mode and rules, asks the operator where they say ask, and reports turns
as heartbeats. A ``read-only`` agent is also given only the read tools (``--tools``). No
extension of the workdir's ``.pi/`` loads, and the extension's ``bash`` tool takes no shell
or command prefix from its ``.pi/settings.json``: a workdir's pi config decides nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet.errors import LaunchFailed
from fleet.mcp.config.grants import MCP_RUNTIMES, no_mcp_why
from fleet.model import AgentSpec, LaunchPlan
from fleet.placeholders import placeholder_token
from fleet.runtimes._cli import (
    CliRuntime,
    checked_model,
    checked_session,
    required_prompt,
    without_v1,
)
from fleet.runtimes.base import RuntimeContext
from fleet.runtimes.gates import gate_env, pi_args
from fleet.runtimes.skill_copies import skill_files
from fleet.sessions.pi_rpc import NAME as PI_RPC
from fleet.transcript.events import StreamParser
from fleet.transcript.pi import PiStream

PROVIDER = "anthropic"


class PiRuntime(CliRuntime):
    """pi (``@mariozechner/pi-coding-agent``)."""

    name = "pi"
    session_protocol = PI_RPC

    def tui_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        prompt = (as_message(spec.prompt),) if spec.prompt else ()
        return (self._exe, *_provider_args(spec), *pi_args(spec), *prompt)

    def headless_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        required_prompt(spec, self.name)  # written to the session by its driver
        return self._rpc_argv(spec)

    def resume_argv(self, spec: AgentSpec, session: str | None, text: str) -> tuple[str, ...]:
        resume = ("--session", checked_session(session)) if session else ("--continue",)
        return (*self._rpc_argv(spec), *resume)

    def _rpc_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        return (self._exe, "--mode", "rpc", *_provider_args(spec), *pi_args(spec))

    def _launch_plan(
        self, spec: AgentSpec, ctx: RuntimeContext, argv: tuple[str, ...], prompt: str | None
    ) -> LaunchPlan:
        return super()._launch_plan(spec, ctx, (argv[0], *skill_args(spec, ctx), *argv[1:]), prompt)

    def skills_folder(self, ctx: RuntimeContext) -> Path:
        return _agent_dir(ctx) / "skills"

    def event_session(self, event: Mapping[str, Any]) -> object:
        if event.get("type") == "response" and event.get("command") == "get_state":
            data = event.get("data")
            return data.get("sessionId") if isinstance(data, Mapping) else None
        return event.get("id") if event.get("type") == "session" else None

    def stream_parser(self) -> StreamParser:
        return PiStream()

    def setup(self, spec: AgentSpec, ctx: RuntimeContext) -> tuple[dict[str, str], dict[Path, str]]:
        if spec.mcp:  # an ad hoc agent, a spec made in code: refused as the config refuses it
            raise LaunchFailed(
                f"{spec.name} cannot start: it runs pi, {no_mcp_why(self.name)}, and is "
                f"granted {', '.join(g.server for g in spec.mcp)}: give it another runtime "
                f"({MCP_RUNTIMES}) or take `mcp:` off it"
            )
        agent_dir = _agent_dir(ctx)
        env = {"PI_OFFLINE": "1", "PI_CODING_AGENT_DIR": str(agent_dir), **gate_env(spec, ctx)}
        if PROVIDER in ctx.accounts:  # the proxy holds the account and puts in its credential
            env["ANTHROPIC_API_KEY"] = placeholder_token(spec.name)
        files = {}
        if PROVIDER in ctx.provider_urls:
            models = {"providers": {PROVIDER: {"baseUrl": without_v1(ctx.provider_urls[PROVIDER])}}}
            files[agent_dir / "models.json"] = json.dumps(models, indent=2)
        files.update(skill_files(spec, ctx, self.skills_folder(ctx)))
        return env, files


def _agent_dir(ctx: RuntimeContext) -> Path:
    return ctx.home / ".pi" / "agent"


def skill_args(spec: AgentSpec, ctx: RuntimeContext) -> tuple[str, ...]:
    """``--no-skills`` (no folder pi would find by itself), then ``--skill`` for each of
    ``spec``'s skills where :meth:`PiRuntime.setup` copies it."""
    skills = _agent_dir(ctx) / "skills"  # PiRuntime.skills_folder
    return ("--no-skills", *(a for s in spec.skills for a in ("--skill", str(skills / s.name))))


def as_message(text: str) -> str:
    """``text`` as pi will read it as a message, not as a flag or a file to attach."""
    return " " + text if text.startswith(("-", "@")) else text


def _provider_args(spec: AgentSpec) -> tuple[str, ...]:
    model = checked_model(spec)
    return ("--provider", PROVIDER, *(("--model", model) if model else ()))
