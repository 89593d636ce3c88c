"""A launch that continues the agent's last session (a review's verdict for a coder whose
run ended): the plan its runtime makes to go on headless with the launch's prompt
(``claude -p … --resume ID``, ``codex exec resume ID``), its session read from what its
last run wrote — as a ``send`` to an ended run does (:mod:`fleet.runs.follow_ups`)."""

from __future__ import annotations

import asyncio

from fleet.model import AgentSpec, LaunchPlan
from fleet.runs.launch.context import RunContexts
from fleet.runs.output.reader import marker_text, started_runtime
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
    session = runtime.session_id("\n".join(last_run(tail)))
    return runtime.follow_up(spec, contexts.context(spec), session, spec.prompt)


def last_run(lines: list[str]) -> list[str]:
    """The lines of ``lines`` the last run wrote: those after its starting marker (all of
    them when the marker lies before them). A session an earlier run of the agent wrote —
    another task's — is never the one continued: a last run that wrote none starts afresh."""
    for index in range(len(lines) - 1, -1, -1):
        said = marker_text(lines[index])
        if said is not None and started_runtime(said) is not None:
            return lines[index + 1 :]
    return lines
