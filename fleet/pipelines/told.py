"""What the operators are told of a pipeline's mission: done, or stopped and how far."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.notices import Notice


def done(mission: str) -> Notice:
    """Every stage passed: the mission is done. It waits behind a command's answer about
    the mission (``mission:NAME``), so ``mission approve`` is answered first."""
    return Notice(
        f"Mission {mission}: every stage passed its gate; it is done.",
        tone="ok",
        about=(f"mission:{mission}",),
    )


def stopped(
    mission: str, stage: str, named: str, why: str, cut: Sequence[str], never: Sequence[str]
) -> Notice:
    """``stage``'s gate failed (``why``): the mission stopped, with the stages stopped under
    way (``cut``) and those that never start (``never``)."""
    text = f"Mission {mission} stopped at stage **{stage}**{named}: {why}"
    if cut:
        text += "\n\nStopped under way: " + ", ".join(cut) + "."
    if never:
        text += "\n\nNever started: " + ", ".join(never) + "."
    return Notice(text, tone="error", alert=True)


def withdrawn(mission: str, stage: str, moved: str) -> Notice:
    """``stage``'s check passed a commit its line has ``moved`` past: the pass withdrawn,
    the check taken again on the new tip."""
    return Notice(
        f"Mission {mission}: stage **{stage}**'s check no longer stands: {moved} since it "
        "passed. It is checked again on the new commit; `merge` and `push` land the line "
        "only at a commit a gate passed.",
        tone="warning",
        alert=True,
    )
