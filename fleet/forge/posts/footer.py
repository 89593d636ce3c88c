"""The provenance footer that ends every comment and description Fleetwarden posts on a
forge: :class:`Provenance` (what it says) and :func:`footer` (the markdown).

The footer is one collapsed ``<details>`` block: its summary names the agent and the run;
opened, it lists the agent and its runtime, the models that served the run (downgrades
too), the run, who asked for it, when it started, how long it took and how it ended,
whether the agent or the watchdog said done, the approvals granted and by whom, the
tokens and the cost against the run's cap, the secret scan of its change, its egress,
the forge operations from the audit and Fleetwarden's version. It cannot be turned off.

Every value in it is hostile text (a model's name is a provider's, an operation's line
quotes an agent, an approval's subject is what the agent asked): each is one line of at
most :data:`VALUE_CAP` characters, escaped (:func:`fleet.markdown.defuse.escape_cell`), so
none can close the block, open another, mention anyone or pass for a line of ours. Lists
are bounded (:data:`OPERATIONS_SHOWN` operations, then how many more), so the footer is
too (:data:`FOOTER_CAP`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Final

from fleet.markdown.defuse import escape_cell
from fleet.markdown.hidden import unseen_free
from fleet.metering import units
from fleet.redaction.guard import guarded

VALUE_CAP: Final = 200
OPERATIONS_SHOWN: Final = 30
MODELS_SHOWN: Final = 10
APPROVALS_SHOWN: Final = 20
FOOTER_CAP: Final = 20_000
"""What the footer can grow to at most, every list at its longest."""
_NAME_MENTION: Final = re.compile(r"@(?=[A-Za-z0-9_])")


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a post on the forge came from: the agent, its run and what the run did.

    ``models``: one line a model, as the ledger says it (``served claude-x (asked
    claude-y)``); ``duration`` in seconds (``None``: still running); ``exit``: how the
    run ended (``None``: not yet); ``done_signal``: ``agent`` (``fw-forge done``),
    ``watchdog`` (no done within the timeout) or ``None``; ``approvals``: ``(what, by
    whom)``; ``cap``: the run's cap in words (``$2.50``); ``operations``: the forge
    operations, one audit line each, oldest first; ``version``: Fleetwarden's; ``task``:
    the task's spend line (:func:`fleet.tasks.spent.spend_line`), ``None`` for none."""

    agent: str
    runtime: str
    models: tuple[str, ...]
    run_id: int | None
    requester: str
    started_at: datetime
    duration: float | None
    exit: str | None
    done_signal: str | None
    approvals: tuple[tuple[str, str], ...]
    tokens: int
    cost_usd: float | None
    cap: str | None
    secret_scan: str
    egress: str
    operations: tuple[str, ...]
    version: str
    task: str | None = None  # the task it is done for, its projection beside its actual


def footer(p: Provenance) -> str:
    """The footer of a post: one ``<details>`` block (the module says what it holds)."""
    run = f"run {p.run_id}" if p.run_id is not None else "no run yet"
    summary = f"Fleetwarden · agent {_html(p.agent)} · {run}"
    items = [
        f"**Agent** {escape_cell(p.agent)} on {escape_cell(p.runtime)}",
        f"**Models** {_joined(p.models, MODELS_SHOWN, 'model') or 'none served yet'}",
        f"**Run** {p.run_id if p.run_id is not None else '—'}, asked by "
        f"{escape_cell(p.requester)}; started {when(p.started_at)}; {_took(p.duration)}; "
        f"exit: {escape_cell(p.exit) if p.exit else '—'}",
        f"**Done signal** {_done(p.done_signal)}",
        f"**Approvals granted** {_approvals(p.approvals) or 'none'}",
        f"**Spend** {units.tokens_words(p.tokens)}, {money(p.cost_usd)}; cap: "
        f"{escape_cell(p.cap) if p.cap else 'none'}",
        *([f"**Task** {escape_cell(p.task.removeprefix('Task '), VALUE_CAP)}"] if p.task else []),
        f"**Secret scan** {escape_cell(p.secret_scan)}",
        f"**Egress** {escape_cell(p.egress)}",
        f"**Forge operations**{_operations(p.operations)}",
        f"**Fleetwarden** {escape_cell(p.version, 60)}",
    ]
    body = "\n".join(f"- {item}" for item in items)
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def no_run_footer(asked_by: str, version: str) -> str:
    """The footer of a post about an issue no run was started on (a label naming no
    agent): who gave it, and Fleetwarden's version."""
    items = [
        "**Run** none started",
        f"**Asked by** {escape_cell(asked_by, 80)}",
        f"**Fleetwarden** {escape_cell(version, 60)}",
    ]
    body = "\n".join(f"- {item}" for item in items)
    return f"<details><summary>Fleetwarden · no run</summary>\n\n{body}\n\n</details>"


def when(at: datetime) -> str:
    """A moment in UTC, to the minute."""
    moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def money(usd: float | None) -> str:
    """Dollars (:func:`fleet.metering.units.usd`); ``cost not priced`` for none."""
    if usd is None:
        return "cost not priced"
    return units.usd(usd)


def duration(seconds: float) -> str:
    """A short duration: ``42s``, ``3m05s``, ``2h07m``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _html(text: str) -> str:
    """``text`` in the summary, which is HTML: escaped, one short line, a mention broken
    by a ``<code>`` no forge notifies in."""
    line = escape(guarded(unseen_free(text), limit=60))
    return _NAME_MENTION.sub("<code>@</code>", line)


def _took(seconds: float | None) -> str:
    return "still running" if seconds is None else f"took {duration(seconds)}"


def _done(signal: str | None) -> str:
    if signal == "agent":
        return "the agent (`fw-forge done`)"
    if signal == "watchdog":
        return "the watchdog: the agent did not say done"
    return "none yet" if not signal else escape_cell(signal, 40)


def _joined(values: Sequence[str], shown: int, noun: str) -> str:
    text = "; ".join(escape_cell(v, VALUE_CAP) for v in values[:shown])
    rest = len(values) - shown
    return text + (f"; … and {rest} more {noun}{'s' if rest != 1 else ''}" if rest > 0 else "")


def _approvals(approvals: Sequence[tuple[str, str]]) -> str:
    lines = [f"{escape_cell(what)} (by {escape_cell(by, 80)})" for what, by in approvals]
    rest = len(lines) - APPROVALS_SHOWN
    return "; ".join(lines[:APPROVALS_SHOWN]) + (f"; … and {rest} more" if rest > 0 else "")


def _operations(operations: Sequence[str]) -> str:
    if not operations:
        return " none"
    lines = [f"  - {escape_cell(line)}" for line in operations[:OPERATIONS_SHOWN]]
    rest = len(operations) - OPERATIONS_SHOWN
    if rest > 0:
        lines.append(f"  - … and {rest} more")
    return "\n" + "\n".join(lines)
