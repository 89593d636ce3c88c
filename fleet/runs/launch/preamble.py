"""What a launch tells an agent before its own prompt: its comms block (who it is, its peers
and how to reach them, made by :mod:`fleet.peers`), prepended to the prompt of a run that
has one, and the same text in ``$HOME/.fleetwarden/PEERS.md`` — for an agent without a
prompt (a TUI waiting for input) that file is how it knows.

The block comes through the :class:`~fleet.runs.launch.launch_kit.LaunchKit` (:data:`Preamble`),
so the runs never import the peers above them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from fleet.model import AgentSpec, LaunchPlan

Preamble = Callable[[AgentSpec], Awaitable[str | None]]
"""The comms block of an agent about to launch (its spec placed on its host), or ``None``
when it has none."""

PEERS_FILE = PurePosixPath(".fleetwarden/PEERS.md")
"""Where, below the agent's HOME, its comms block is written."""


def first_line(block: str) -> str:
    """The block's first line: ``[fleetwarden] You are agent NAME on host HOST.``"""
    return block.split("\n", 1)[0]


def prompted(spec: AgentSpec, block: str | None) -> AgentSpec:
    """``spec`` with ``block`` before its prompt; as it is when it has no prompt, no block,
    or a prompt that already begins with the block (never told twice). A prompt that only
    quotes the block's first line somewhere (an issue's text, say) is still told it."""
    if block is None or not spec.prompt or spec.prompt.startswith(first_line(block)):
        return spec
    return replace(spec, prompt=f"{block}\n\n{spec.prompt}")


def with_peers_file(plan: LaunchPlan, home: Path, block: str | None) -> LaunchPlan:
    """``plan`` writing ``block`` to ``home``'s :data:`PEERS_FILE` too (a remote host's
    backend writes the plan's files there)."""
    if block is None:
        return plan
    return replace(plan, files={**plan.files, home / PEERS_FILE: block})
