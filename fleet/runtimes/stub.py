"""The ``stub`` runtime: the bundled demo agent (``stub_agent.py``), no real CLI needed."""

from __future__ import annotations

import sys
from pathlib import Path

from fleet.model import AgentSpec, LaunchPlan
from fleet.runtimes.base import RuntimeContext, base_env, provider_env
from fleet.transcript.events import PlainText, StreamParser

STUB_AGENT = Path(__file__).with_name("stub_agent.py")
STUB_WORK = Path(__file__).with_name("stub_work.py")
"""What the stub loads from beside it to commit and give a verdict: a host gets both."""


class StubRuntime:
    """Runs the demo agent with the same Python that runs Fleetwarden."""

    name = "stub"

    def __init__(self, python: str = sys.executable, step_delay: float = 0.05) -> None:
        self._python = python
        self._step_delay = step_delay

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        argv = [self._python, "-I", "-S", str(STUB_AGENT), "--step-delay", str(self._step_delay)]
        if spec.prompt:
            argv.append(f"--prompt={spec.prompt}")
        if spec.model:
            argv.append(f"--model={spec.model}")
        env = base_env(spec, ctx)
        env.update(provider_env(ctx, spec.name))
        if ctx.heartbeat_url and ctx.heartbeat_token:
            env["FLEETWARDEN_HEARTBEAT_URL"] = ctx.heartbeat_url
            env["FLEETWARDEN_HEARTBEAT_TOKEN"] = ctx.heartbeat_token
        return LaunchPlan(argv=tuple(argv), env=env, cwd=ctx.workdir)

    def follow_up(
        self, spec: AgentSpec, ctx: RuntimeContext, session: str | None, text: str
    ) -> LaunchPlan | None:
        return None  # the stub reads follow-ups on its input

    def session_id(self, output: str) -> str | None:
        return None

    def parser(self, tty: bool) -> StreamParser:
        return PlainText()
