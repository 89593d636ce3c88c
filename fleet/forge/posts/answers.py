"""What Fleetwarden answers on an issue given to no agent it can start there: a label that
names no agent, or an agent that works on no repository, or on another one. The person who
labelled the issue (someone allowed: strangers get nothing) reads why no run started and
which labels do start one, instead of waiting for a run that never comes
(:func:`no_run_words`). Pure: the roster's facts come in.

The label is the forge user's text: it is shown escaped
(:func:`~fleet.markdown.defuse.escape_cell`), and the agent it names only when it is an
agent's name at all. The comment names no other repository of the config: which one an agent
works on is the operator's to know, and chat is told (:func:`why_not`, in
:class:`~fleet.forge.facts.NoRunNews`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleet.markdown.defuse import escape_cell
from fleet.names import is_agent_name


@dataclass(frozen=True, slots=True)
class Unstartable:
    """Why an issue given to ``agent`` (by ``label``, or by assignment: ``label`` None)
    cannot become a run on repository ``repo`` (``slug`` on the forge)."""

    agent: str
    label: str | None
    repo: str
    slug: str
    known: bool  # the roster (or the ledger) knows an agent of that name
    agent_repo: str | None  # the repository it works on


def why_not(reason: Unstartable) -> str:
    """The few words kept as the delivery's outcome and in the log."""
    agent = reason.agent if is_agent_name(reason.agent) else "?"
    if not is_agent_name(reason.agent):
        return "the trigger names no agent"
    if not reason.known:
        return f"no agent is named {agent}"
    if reason.agent_repo is None:
        return f"{agent} is no agent on a repository (the roster gives it none)"
    return f"{agent} works on repository {reason.agent_repo}, not on {reason.repo}"


def no_run_words(reason: Unstartable, roster: Mapping[str, str | None], prefix: str) -> str:
    """The comment on the issue: why no run started, the labels that start one on this
    repository (``roster``: each agent's repository; ``prefix``: the forge's label prefix)
    and what to do."""
    agent = reason.agent
    given = (
        f"The label {escape_cell(reason.label, 80)}"
        if reason.label is not None
        else "An assignment to Fleetwarden"
    )
    if not is_agent_name(agent):
        why = f"{given} names no agent."
    elif not reason.known:
        why = f"{given} names **{agent}**, and no agent of that name is in Fleetwarden's roster."
    elif reason.agent_repo is None:
        why = f"**{agent}** works on no repository: its roster entry has no `repo:`."
    else:  # which repository it does work on is the operator's to know, not the forge's
        why = f"**{agent}** does not work on this repository."
    here = sorted(name for name, repo in roster.items() if repo == reason.repo)
    if here:
        labels = ", ".join(f"`{prefix}{name}`" for name in here)
        what = f"The labels that start a run here: {labels}. Label the issue with one of them"
        what += " instead." if reason.label is not None else "."
    else:
        what = (
            f"No agent works on {escape_cell(reason.slug, 100)} yet: an operator gives one "
            f"`repo: {reason.repo}` in the config's `agents:`, then labels the issue "
            f"`{prefix}NAME`."
        )
    return f"Fleetwarden started no run on this issue. {why}\n\n{what}"
