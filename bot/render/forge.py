"""Pure renderers of forge runs for chat: the ``forge list`` table, the one line of links
(``issue acme/app#12 · PR #18``) that ``ps`` and ``runs`` show beside a forge run's agent,
and the news of a run's pull request (:func:`pull_news`: it could not be opened when the
work was done, and why; or it is open now).

An issue's title is whatever a forge user wrote, and a forge's or repository's name may
come from the forge too: each passes the guard (:mod:`fleet.redaction.guard`: one line,
bounded, nothing hidden) and is escaped (:func:`bot.text.agent_text.said`), so none of it
is markup, a mention that pings or a line of Fleetwarden's own. A link's address is the
forge's own (an issue's or a pull request's page); one that does not read as a plain web
address is shown as text instead, never as a link.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from bot.render.fleet import ago
from bot.text.agent_text import said
from fleet.forge.facts import NoRunNews, PullNews
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.names import is_agent_name

TITLE_CAP: Final = 80  # characters of an issue's title in the table
NAME_CAP: Final = 60  # of a forge's, a repository's or an agent's name
_DASH: Final = "—"
_ADDRESS: Final = re.compile(r"https?://[^\s<>()\[\]`\"'\\|]{1,500}")


def forge_list(
    records: Sequence[ForgeRunRecord],
    now: datetime,
    *,
    held: Mapping[str, str] | None = None,
    not_opened: Mapping[int, str] | None = None,
    ended: int = 0,
) -> str:
    """``forge list``: one row per forge run — its forge, its issue (linked), the issue's
    title, the agent, where the run is, its pull request (linked) and when it started;
    then why each ``unpublished`` run's pull request was not opened (``not_opened``, by
    run, in the operator's words), and each forge ``held`` (its events refused) with why
    and the fix. With no run listed, ``ended``: how many runs have ended (``forge all``
    lists them)."""
    heldwords = [
        f"⚠ Forge {said(name, NAME_CAP)} is held — its events are refused: {said(why, 600)}."
        for name, why in sorted((held or {}).items())
    ]
    if not records:
        given = (
            "An issue becomes one when it is given to an agent on a configured forge (its "
            "label or an assignment to the bot)."
        )
        if ended:
            runs = "run has" if ended == 1 else "runs have"
            empty = f"No forge run is live now; {ended} {runs} ended (`forge all` lists them)."
        else:
            empty = f"No forge runs yet. {given}"
        return "\n\n".join([*heldwords, empty])
    rows = [
        "| forge | issue | title | agent | state | PR | started |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        rows.append(
            f"| {said(r.forge, NAME_CAP)} | {_issue(r)} | {said(r.title, TITLE_CAP) or _DASH} | "
            f"{said(r.agent, NAME_CAP)} | {_state(r)} | {_pull(r)} | {_started(r, now)} |"
        )
    live = sum(1 for r in records if r.ended_at is None)
    plural = "s" if len(records) != 1 else ""
    text = "\n".join(rows) + f"\n\n{len(records)} forge run{plural}, {live} not ended."
    whys = [
        f"**{said(r.agent, NAME_CAP)}**'s pull request for {_issue(r)} was not opened: "
        f"{said(not_opened[r.id], 500)}."
        for r in records
        if not_opened and r.id in not_opened
    ]
    return "\n\n".join([*heldwords, text, *whys])


def pull_news(news: PullNews) -> str:
    """Chat's word on a forge run's pull request: opened when its agent was done, or not
    (why, in Fleetwarden's words, and what opens it), open now after all, or how it ended."""
    agent = said(news.agent, NAME_CAP)
    issue = _link(f"{said(str(news.slug), NAME_CAP)}#{news.issue}", news.issue_url)
    if news.ended is not None:
        pull = _link(f"#{news.pull}", news.pull_url) if news.pull is not None else "its PR"
        who = f" by {said(news.by, NAME_CAP)}" if news.by else ""
        mark = "🏁" if news.ended == "merged" else "⏹"
        return f"{mark} **{agent}**'s pull request {pull} for {issue} was {news.ended}{who}."
    if news.pull is not None:
        pull = _link(f"#{news.pull}", news.pull_url)
        if not news.late:
            return f"🔀 **{agent}** opened pull request {pull} for {issue}: it waits for review."
        return (
            f"✅ **{agent}**'s pull request {pull} for {issue} is open now (it could not be "
            "opened when its work was done)."
        )
    fix = news.fix if news.fix and is_agent_name(news.agent) else said(news.fix or "", 300)
    return (
        f"⚠ **{agent}** finished its work on {issue}, but its pull request could not be "
        f"opened: {said(news.why or 'the forge did not say why', 500)}.\n\n{fix}."
    )


def no_run_news(news: NoRunNews) -> str:
    """Chat's one line on an issue given to no agent that can start there: the issue, the
    label (or the assignment), who gave it and why no run started."""
    issue = f"{said(str(news.slug), NAME_CAP)}#{news.issue}"
    given = f"the label {said(news.label, NAME_CAP)}" if news.label is not None else "assigning it"
    who = f"@{said(news.actor, NAME_CAP)} on {said(news.forge, NAME_CAP)}"
    return f"⚠ {issue}: {given} (by {who}) started no run — {said(news.why, 300)}."


def links(record: ForgeRunRecord) -> str:
    """A forge run's issue and pull request on one line: ``issue acme/app#12 · PR #18``,
    each a link to the forge's page."""
    line = f"issue {_issue(record)}"
    if record.pull is not None:
        line += f" · PR {_pull(record)}"
    return line


def issue_link(record: ForgeRunRecord) -> str:
    """A forge run's issue, ``acme/app#12``, linked to its page."""
    return _issue(record)


def _issue(record: ForgeRunRecord) -> str:
    return _link(f"{said(str(record.slug), NAME_CAP)}#{record.issue}", record.issue_url)


def _pull(record: ForgeRunRecord) -> str:
    if record.pull is None:
        return _DASH
    return _link(f"#{record.pull}", record.pull_url)


def _state(record: ForgeRunRecord) -> str:
    state = said(record.state, 20)
    if record.done_signal == "watchdog":
        return f"{state} (no done signal)"
    if record.done_status is not None:
        return f"{state} (done {said(record.done_status, 20)})"
    return state


def _started(record: ForgeRunRecord, now: datetime) -> str:
    started = ago(record.started_at, now)
    if record.ended_at is None:
        return started
    return f"{started}, ended {ago(record.ended_at, now)}"


def web_address(address: str | None) -> str | None:
    """``address`` when it reads as a plain web address (a forge's page), else None —
    never a ``javascript:`` link or one that could break out of markup."""
    return address if address is not None and _ADDRESS.fullmatch(address) else None


def _link(label: str, address: str | None) -> str:
    """``label`` (markdown already) linked to ``address``, if it reads as a web address."""
    return label if web_address(address) is None else f"[{label}]({address})"
