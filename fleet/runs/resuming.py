"""A launch that continues the agent's last session (a review's verdict for a coder whose
run ended): the plan its runtime makes to go on headless with the launch's prompt
(``claude -p … --resume ID``, ``codex exec resume ID``), its session read from what its
last run wrote — as a ``send`` to an ended run does (:mod:`fleet.runs.follow_ups`)."""

from __future__ import annotations

import asyncio

from fleet.model import AgentSpec, LaunchPlan
from fleet.runs.context import RunContexts
from fleet.runtimes import RuntimeRegistry
from fleet.transcript.logtail import tail_lines

TAIL = 500
"""Lines of the agent's log its session id is looked for in."""


async def resumed_plan(
    runtimes: RuntimeRegistry, contexts: RunContexts, spec: AgentSpec, resume: bool
) -> LaunchPlan | None:
    """With ``resume``, the plan that continues the agent's last session with
    ``spec.prompt``; ``None`` without it, without a prompt, or when its runtime continues
    no session headless (``command``, the stub, a TUI): the launch then plans afresh."""
    if not resume or not spec.prompt:
        return None
    runtime = runtimes.get(spec.runtime)
    tail = await asyncio.to_thread(tail_lines, contexts.log_path(spec.name), TAIL)
    session = runtime.session_id("\n".join(tail))
    return runtime.follow_up(spec, contexts.context(spec), session, spec.prompt)
