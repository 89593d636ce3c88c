"""Why an agent has no live branch for a verb to act on, and what cuts it one: its last
branch merged (by ``merge``, or its forge run's pull request merged on the forge), closed
or discarded — which, and when — then the ``spawn`` that cuts a new one, naming
``--repo`` only when the agent has no repository of its own to go back to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from fleet.ledger.records.forge import ForgeRunRecord
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.agents import AgentsStore

_ENDED: Final = re.compile(r"PR #(?P<n>\d+) (?P<how>merged|closed)")
"""How Fleetwarden's audit of a forge run says its pull request ended."""


@dataclass(frozen=True, slots=True)
class PullEnd:
    """How a forge run's pull request ended: its number, ``merged`` or ``closed``."""

    number: int
    how: str


def no_branch_words(
    agent: str, last: LineRecord | None, pull: PullEnd | None, repo: str | None
) -> str:
    """Why ``agent`` has no live branch (``last``: its newest line, ended, if any; ``pull``:
    how the pull request of that line's forge run ended) and the ``spawn`` that cuts one
    (``repo``: the repository its next spawn works on, None when it has none)."""
    if repo is not None:
        step = f"`spawn {agent}` cuts a new one on {repo}"
    else:
        step = f"`spawn {agent} --repo REPO` cuts one (or give it `repo:` in the roster)"
    if last is None:
        return f"{agent} has no branch yet: {step}."
    when = f" on {last.ended_at:%Y-%m-%d %H:%M} UTC" if last.ended_at is not None else ""
    if pull is not None:
        what = f"ended{when} when its pull request #{pull.number} was {pull.how}"
    elif last.state is LineState.MERGED:
        what = f"was merged{when}"
    else:
        what = f"was discarded{when}"
    return (
        f"{agent} has no branch now: its last one, {last.branch} of {last.repo}, {what}. "
        f"{step[0].upper()}{step[1:]}."
    )


async def why_no_branch(
    lines: LinesStore, agents: AgentsStore, forge: ForgeStore, agent: str
) -> str:
    """:func:`no_branch_words` for ``agent``, as the ledger's lines, agents and forge runs have it
    now."""
    mine = [line for line in await lines.lines(state=None) if line.agent == agent]
    ended = [line for line in mine if line.state is not LineState.LIVE and line.checkout]
    last = ended[-1] if ended else None
    record = await agents.get_agent(agent)
    repo = record.spec.repo if record is not None else None
    return no_branch_words(agent, last, await _pull_end(forge, last), repo)


async def _pull_end(forge: ForgeStore, line: LineRecord | None) -> PullEnd | None:
    """How the pull request of ``line``'s forge run ended, as Fleetwarden's audit says."""
    if line is None:
        return None
    for run in reversed(await forge.forge_runs(live=False, agent=line.agent)):
        if run.line_id == line.id and (end := await run_pull_end(forge, run)) is not None:
            return end
    return None


async def run_pull_end(forge: ForgeStore, run: ForgeRunRecord) -> PullEnd | None:
    """How forge run ``run``'s pull request ended (merged or closed), as Fleetwarden's audit
    says; None while it is open, or when it had none."""
    if run.pull is None:
        return None
    for entry in reversed(await forge.forge_audit(run.id, limit=50)):
        found = _ENDED.fullmatch(entry.detail)
        if entry.op == "end" and entry.allowed and found and int(found["n"]) == run.pull:
            return PullEnd(run.pull, found["how"])
    return None
