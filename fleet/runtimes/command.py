"""The ``command`` runtime: any program, run exactly as the roster's ``argv`` says.

The argv comes from the roster only, never from chat, and is run as is: the prompt is not
appended but given in ``FLEETWARDEN_PROMPT``, and the heartbeat endpoint in
``FLEETWARDEN_HEARTBEAT_URL`` / ``FLEETWARDEN_HEARTBEAT_TOKEN`` for a program that wants to
report in. Provider base URLs (the metering proxy's, for this agent) are in the variables
the official SDKs read, ``ANTHROPIC_BASE_URL`` and ``OPENAI_BASE_URL``, and in
``FLEETWARDEN_<PROVIDER>_BASE_URL``. Follow-ups are typed into its standard input.

Its MCP servers are in ``$HOME/.fleetwarden/mcp.json`` (mode 0600, the ``.mcp.json``
shape: each server's URL at the agent's MCP door and ``Authorization: Bearer <the run's
token>``, :mod:`fleet.runtimes.mcp_launch`), and its skills in
``$HOME/.fleetwarden/skills/<name>`` (:mod:`fleet.runtimes.skill_copies`).
"""

from __future__ import annotations

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, LaunchPlan
from fleet.runtimes.base import RuntimeContext, base_env, provider_env
from fleet.runtimes.mcp_launch import mcp_json
from fleet.runtimes.skill_copies import COMMAND_SKILLS, skill_files
from fleet.transcript.events import PlainText, StreamParser


class CommandRuntime:
    """A program of the operator's choosing."""

    name = "command"

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        if not spec.argv or not spec.argv[0]:
            raise LaunchFailed(
                f"{spec.name} uses the command runtime but has no command: set its `argv` "
                "in the roster, e.g. argv: [python3, -m, mybot]"
            )
        env = base_env(spec, ctx)
        env.update(provider_env(ctx, spec.name))
        if spec.prompt:
            env["FLEETWARDEN_PROMPT"] = spec.prompt
        if ctx.heartbeat_url and ctx.heartbeat_token:
            env["FLEETWARDEN_HEARTBEAT_URL"] = ctx.heartbeat_url
            env["FLEETWARDEN_HEARTBEAT_TOKEN"] = ctx.heartbeat_token
        skills = ctx.home / COMMAND_SKILLS  # Fleetwarden's whole: emptied at each launch
        files = {**mcp_json(spec, ctx), **skill_files(spec, ctx, skills)}
        return LaunchPlan(
            argv=tuple(spec.argv), env=env, cwd=ctx.workdir, files=files, fresh=(skills,)
        )

    def follow_up(
        self, spec: AgentSpec, ctx: RuntimeContext, session: str | None, text: str
    ) -> LaunchPlan | None:
        return None  # typed into its input

    def session_id(self, output: str) -> str | None:
        return None

    def parser(self, tty: bool) -> StreamParser:
        return PlainText()
