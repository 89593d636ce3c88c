"""What a forge event asks of forge runs: :func:`decide` reads an event (verified, its
change confirmed where the forge's delivery could not say whose it was) against the live
run of its issue and the forge's config, and names one :data:`Action`. Pure: no forge, no
ledger, no clock — :class:`~fleet.forge.runs.work.ForgeWork` carries the action out.

The events, and what each does::

    the bot's own doing (but closing a pull request), or a
      comment Fleetwarden posted .............................. Ignore
    labelled fleetwarden:AGENT, assigned to the bot, or an
      issue opened mentioning it (no run on it yet) .......... Begin   (who acts, allowed)
    a comment mentioning the bot on an issue with no run ...... Begin   (allowed)
    a comment mentioning the bot that says only ``raise
      [+AMOUNT]`` or ``stop`` on the run's issue or pull
      request ................................................. Spend   (allowed)
    a comment on the run's pull request, or one mentioning
      the bot on its issue .................................... Continue (allowed)
    a "request changes" review, or one with words, on the
      run's pull request ...................................... Continue (allowed)
    the run's pull request closed or merged ................... End
    the issue unlabelled, or unassigned from the bot .......... Stop    (allowed)
    the issue closed: ended if its pull request closed it,
      else stopped ............................................ IssueClosed
    anything else ............................................. Ignore, with why
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from fleet.forge.model import EventKind, ForgeEvent, same_login
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do; :attr:`why` is kept as the delivery's outcome (``ignored: why``)."""

    why: str


@dataclass(frozen=True, slots=True)
class Begin:
    """Start a run of :attr:`agent` on the event's issue, if its actor may."""

    agent: str


@dataclass(frozen=True, slots=True)
class Continue:
    """Continue :attr:`run`'s session with the event's words (a ``comment`` or a
    ``review``: :attr:`kind`), if its actor may."""

    run: ForgeRunRecord
    kind: str


@dataclass(frozen=True, slots=True)
class Spend:
    """Answer :attr:`run`'s ask at its cap (``cutoff: ask``) with :attr:`verb` (``raise``,
    by :attr:`amount` or the offer; or ``stop``), if the event's actor may: answered on the
    forge, never sent to the agent."""

    run: ForgeRunRecord
    verb: str
    amount: str | None


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop :attr:`run`: its issue was :attr:`how` (``unlabelled``, ``unassigned``,
    ``closed``), if the event's actor may."""

    run: ForgeRunRecord
    how: str


@dataclass(frozen=True, slots=True)
class End:
    """End :attr:`run`: its pull request was closed or merged (the event says which)."""

    run: ForgeRunRecord


@dataclass(frozen=True, slots=True)
class IssueClosed:
    """:attr:`run`'s issue was closed: an :class:`End` if its pull request is closed too
    (merged, "Closes #N"), asked of the forge; else a :class:`Stop`."""

    run: ForgeRunRecord


Action = Ignore | Begin | Continue | Spend | Stop | End | IssueClosed
"""What one forge event does to forge runs."""


def decide(
    event: ForgeEvent,
    run: ForgeRunRecord | None,
    entry: ForgeEntry,
    posted: Container[int] = (),
) -> Action:
    """What ``event`` asks, given the live ``run`` of its issue (or None), its forge's
    ``entry`` and the ids of the comments Fleetwarden ``posted``."""
    # The bot's own doing moves nothing — but its merge (``merge`` from chat, by the
    # forge) closes the run's pull request as anyone's does.
    if same_login(event.actor, entry.login) and event.kind is not EventKind.PULL_CLOSED:
        return Ignore("the bot's own doing")
    if event.comment_id is not None and event.comment_id in posted:
        return Ignore("a comment Fleetwarden posted")
    kind = event.kind
    if kind in (EventKind.LABELED, EventKind.ASSIGNED, EventKind.OPENED):
        agent = trigger_agent(entry, event)
        if agent is None:
            return Ignore("no trigger")
        if run is not None:
            return Ignore(f"#{event.number} already has a run of {run.agent}")
        return Begin(agent)
    if kind is EventKind.COMMENT:
        return _comment(entry, event, run)
    if kind is EventKind.REVIEW:
        return _review(event, run)
    if run is None:
        return Ignore("no run on it")
    if kind is EventKind.PULL_CLOSED and event.is_pull and run.pull == event.number:
        return End(run)
    # Gitea says only which labels are left: None when no trigger label is.
    if kind is EventKind.UNLABELED and event.label in (None, entry.label_for(run.agent)):
        return Stop(run, "unlabelled")
    if kind is EventKind.UNASSIGNED and same_login(event.assignee or "", entry.login):
        return Stop(run, "unassigned")
    if kind is EventKind.CLOSED and not event.is_pull and run.issue == event.number:
        return IssueClosed(run) if run.pull is not None else Stop(run, "closed")
    return Ignore("nothing to do")


def trigger_agent(entry: ForgeEntry, event: ForgeEvent) -> str | None:
    """The agent ``event`` gives its issue to (a label, an assignment, a mention), if any."""
    if event.is_pull:
        return None
    if event.kind is EventKind.LABELED and event.label is not None:
        return entry.agent_of_label(event.label)
    if event.kind is EventKind.ASSIGNED and entry.trigger.assign:
        return entry.agent if same_login(event.assignee or "", entry.login) else None
    if event.kind is EventKind.OPENED and entry.trigger.mention:
        return entry.agent if mentions(event.body, entry.login) else None
    return None


def mentions(text: str, login: str) -> bool:
    """Whether ``text`` mentions ``@login`` (as a word: not ``@login2``, not an email)."""
    pattern = rf"(?<![\w@.])@{re.escape(login)}(?![\w-])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def _comment(entry: ForgeEntry, event: ForgeEvent, run: ForgeRunRecord | None) -> Action:
    mentioned = entry.trigger.mention and mentions(event.body, entry.login)
    if run is None:
        if event.is_pull or not mentioned or entry.agent is None:
            return Ignore("no run on it, and no mention of the bot")
        return Begin(entry.agent)
    on_pull = event.is_pull and run.pull == event.number
    if not on_pull and not mentioned:
        return Ignore("a comment on the issue without a mention of the bot")
    said = spend_words(event.body, entry.login) if mentioned else None
    if said is not None:
        return Spend(run, *said)
    return Continue(run, "comment")


_SPEND_WORDS = re.compile(r"(raise)(?:\s+(\+?\$?[\d.,_]+[km]?))?|(stop)", re.IGNORECASE)


def spend_words(text: str, login: str) -> tuple[str, str | None] | None:
    """A comment that says only ``@login raise [+AMOUNT]`` or ``@login stop`` (the mention
    anywhere, a trailing ``.`` or ``!`` allowed): the verb and the amount; else ``None``."""
    pattern = rf"(?<![\w@.])@{re.escape(login)}(?![\w-])"
    words = " ".join(re.sub(pattern, " ", text, flags=re.IGNORECASE).split()).rstrip(".! ")
    found = _SPEND_WORDS.fullmatch(words)
    if found is None:
        return None
    if found[3] is not None:
        return "stop", None
    return "raise", found[2]


def _review(event: ForgeEvent, run: ForgeRunRecord | None) -> Action:
    if run is None or not event.is_pull or run.pull != event.number:
        return Ignore("a review of no pull request of a run")
    state = (event.review_state or "").lower()
    if state == "approved":
        return Ignore("approved, nothing to continue")
    if state != "changes_requested" and not event.body.strip():
        return Ignore("a review without words")
    return Continue(run, "review")
