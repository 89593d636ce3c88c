"""The ``stub`` runtime: the bundled demo agent (``stub_agent.py``), no real CLI needed."""

from __future__ import annotations

import sys
from pathlib import Path

from fleet.model import AgentSpec, LaunchPlan
from fleet.runtimes import RuntimeContext, base_env

STUB_AGENT = Path(__file__).with_name("stub_agent.py")


class StubRuntime:
    """Runs the demo agent with the same Python that runs Fleetwarden."""

    name = "stub"

    def __init__(self, python: str = sys.executable, step_delay: float = 0.05) -> None:
        self._python = python
        self._step_delay = step_delay

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        argv = [self._python, "-I", str(STUB_AGENT), "--step-delay", str(self._step_delay)]
        if spec.prompt:
            argv.append(f"--prompt={spec.prompt}")
        if spec.model:
            argv.append(f"--model={spec.model}")
        env = base_env(spec, ctx)
        return LaunchPlan(argv=tuple(argv), env=env, cwd=ctx.workdir)
