"""The one status comment Fleetwarden keeps on a forge run's issue, edited as the run goes:
:class:`StickyState` (what it knows) and :func:`status_text` (the markdown).

It says where the run is (queued, working, waiting for an approval, done, done but its
pull request not opened, failed, gone quiet past the watchdog, stopped, ended — merged,
closed, or its branch ended before its pull request opened), what the
agent does now (its last forge operation), why it waits or failed and what to do next, how
many approvals wait for an answer in chat, the spend so far against the run's cap, what a
run like it usually costs (median and p90 of past runs; that there are none yet) and,
once the run is over, what this one cost; the task it is, its projection stored when it was
made beside what its runs used (:mod:`fleet.tasks.spent`); then the pull request's link and
the provenance footer (:func:`fleet.forge.posts.footer.footer`). Every value that came from
an agent, a model or a forge user is escaped on one line
(:func:`fleet.markdown.defuse.escape_cell`); the whole stays within :data:`STICKY_CAP`
characters, under GitHub's 65,536.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from fleet.budgets.runs.estimate import NO_HISTORY, RunEstimate
from fleet.forge.posts.footer import Provenance, footer, money
from fleet.markdown.defuse import escape_cell
from fleet.metering import units

STICKY_CAP: Final = 60_000
DOING_CAP: Final = 500  # characters of the agent's summary, or of why the run waits
NEXT_CAP: Final = 300  # of what to do next
NOW_CAP: Final = 200  # of the line saying what the agent does now
TASK_CAP: Final = 300  # of the task's spend line
_LINK: Final = re.compile(r"https?://[^\s<>()\[\]`\"'\\]{1,500}")
_NUMBER: Final = re.compile(r"[0-9]{1,9}")


Paused = Literal["unanswered", "cap", "budget", "operator"]
"""Why a working run is frozen: its own cap nobody answered, its own cap (``cutoff:
freeze``), a budget's limit, an operator's hand."""
PAUSED: Final[dict[str, str]] = {
    "unanswered": "Paused at its cap: nobody answered in time — an operator's `raise` in chat "
    "continues it",
    "cap": "Paused at its cap — an operator's `raise` in chat continues it",
    "budget": "Paused: the fleet's budgets do not allow more now",
    "operator": "Paused by an operator",
}
"""What the status comment says of each: never the freeze's own reason."""


@dataclass(frozen=True, slots=True)
class StickyState:
    """What the status comment of a forge run says.

    ``state`` is the run's (``queued``, ``working``, ``waiting``, ``failed``, ``stopped``,
    ``ended``); ``done_signal`` ``agent`` or ``watchdog``, ``done_status`` ``ok`` or
    ``failed``, once said; ``doing`` why the run is queued or its pull request was not
    opened, or what the agent said when done; ``last_operation`` its last forge operation
    (what it does now); ``cap`` the run's cap in words; ``estimate`` what past runs like it
    cost (``None``: there are none yet); ``over``: the run is done for now, so what it cost
    is told; ``next_step`` what opens its pull request, when it could not be; ``ended``
    how an ended run ended (its pull request merged, or closed; its branch ended first)."""

    agent: str
    state: str
    done_signal: str | None
    done_status: str | None
    doing: str | None
    last_operation: str | None
    approvals_waiting: int
    tokens: int
    cost_usd: float | None
    cap: str | None
    estimate: RunEstimate | None
    over: bool
    pull_url: str | None
    provenance: Provenance
    next_step: str | None = None
    ended: str | None = None
    asking: bool = False  # paused at its cap, asking (``cutoff: ask``)
    paused: Paused | None = None  # frozen, not asking: why, in our own words (see PAUSED)
    review: str | None = None  # its review agent's last word: which commit it approved


def status_text(state: StickyState) -> str:
    """The status comment's markdown (the module says what it holds)."""
    lines = [f"**{escape_cell(state.agent, 60)}** · {_state_line(state)}"]
    if state.doing:
        why = ("queued", "unpublished", "failed", "stopped")
        label = "Why" if state.state in why else "Summary"
        lines.append(f"{label}: {escape_cell(state.doing, DOING_CAP)}")
    if state.next_step:
        lines.append(f"Next: {_inline(state.next_step, NEXT_CAP)}")
    if state.review:
        lines.append(f"Review agent: {escape_cell(state.review, NOW_CAP)}")
    if state.state == "working" and state.last_operation:
        lines.append(f"Now: {escape_cell(state.last_operation, NOW_CAP)}")
    if state.asking:
        lines.append(
            "💸 Its run reached its cap and is paused: a comment mentioning the bot that "
            "says `raise` (by the raise offered), `raise +AMOUNT` (`+$2`, `+50k`) or `stop` "
            "answers, from whoever may give it work; so does an answer in chat."
        )
    waiting = state.approvals_waiting - state.asking
    if waiting > 0:
        n = waiting
        asked = f"{n} approval{'s' if n != 1 else ''}"
        lines.append(f"✋ {asked} waiting: answer in chat, where Fleetwarden asked.")
    lines.append(_spend(state))
    lines.append(_estimate(state.estimate))
    if state.provenance.task:
        lines.append(escape_cell(state.provenance.task, TASK_CAP))
    if state.pull_url:
        lines.append(f"Pull request: {_link(state.pull_url)}")
    body = "\n\n".join(lines)
    end = footer(state.provenance)
    room = STICKY_CAP - len(end) - 2
    if len(body) > room:  # every part is bounded: only a footer at its longest gets here
        body = body[: max(room - 40, 0)].rstrip() + "\n\n[… cut]"
    return f"{body}\n\n{end}"


def _state_line(state: StickyState) -> str:
    match state.state:
        case "queued":
            return "⏳ Queued: it starts when its agent, its budget and the fleet's limits allow."
        case "working" if state.asking:
            return "💸 Paused at its cap, asking for more."
        case "working" if state.paused:
            return f"⏸ {PAUSED[state.paused]}."
        case "working" if state.approvals_waiting > 0:
            return "✋ Waiting for approval."
        case "working":
            return "🛠 Working."
        case "waiting" if state.done_signal == "watchdog":
            return "⏱ No done signal: the agent went quiet, and the watchdog ended its turn."
        case "waiting" if state.done_status == "ok":
            return "✅ Done: the pull request waits for review."
        case "waiting":
            return "💬 Waiting for review."
        case "unpublished":
            return "⚠ Done, but its pull request could not be opened."
        case "failed":
            return "❌ Failed: the agent could not finish."
        case "stopped":
            return "⏹ Stopped: the issue was unassigned or unlabelled."
        case "ended" if state.ended:
            return f"🏁 Ended: {escape_cell(state.ended, 120)}."
        case "ended":
            return "🏁 Ended."
    return escape_cell(state.state, 40)


def _spend(state: StickyState) -> str:
    cap = f" against its cap of {escape_cell(state.cap, 80)}" if state.cap else " (no cap)"
    spent = f"{units.tokens_words(state.tokens)}, {money(state.cost_usd)}"
    if state.over:
        return f"This run: {spent}{cap}."
    return f"Spend so far: {spent}{cap}."


def _estimate(estimate: RunEstimate | None) -> str:
    if estimate is None:
        return f"A run like this: {NO_HISTORY} (no earlier run of this agent on its model)."
    runs = f"{estimate.runs} past run{'s' if estimate.runs != 1 else ''}"
    if estimate.usd is not None:
        median, p90 = estimate.usd
        return f"A run like this costs {money(median)} (median), {money(p90)} (p90), from {runs}."
    median, p90 = estimate.tokens
    median_words, p90_words = units.tokens_words(median), units.tokens(p90)
    return f"A run like this takes {median_words} (median), {p90_words} (p90), from {runs}."


def _inline(text: str, limit: int) -> str:
    """Fleetwarden's own words with its commands in code spans (``pr coder``): each part
    between backticks escaped on its own, the spans kept."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an odd backtick: no span is trusted
        return escape_cell(text, limit)
    shown = [
        _spaced(part, escape_cell(part, limit))
        if n % 2 == 0
        else f"`{' '.join(part.split())[:80]}`"
        for n, part in enumerate(parts)
    ]
    return "".join(shown)


def _spaced(part: str, escaped: str) -> str:
    """``escaped`` with the blank ``part`` had before and after it (one space each)."""
    before = " " if part[:1].isspace() else ""
    after = " " if part[-1:].isspace() and escaped else ""
    return f"{before}{escaped}{after}"


def _link(url: str) -> str:
    """The forge's address of a pull request as a link, if it reads as one; else as text."""
    if not _LINK.fullmatch(url):
        return escape_cell(url, 200)
    number = url.rstrip("/").rsplit("/", 1)[-1]
    return f"[{'#' + number if _NUMBER.fullmatch(number) else 'open it'}]({url})"
