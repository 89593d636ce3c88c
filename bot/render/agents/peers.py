"""Pure renderers of what agents say to each other, as the operator reads it: the notice a
message makes in both agents' threads, and the ``msgs`` list.

What an agent wrote to another — a message's text, a task's title, a review's verdict — is
the agent's, and hostile: it is escaped and quoted (:mod:`bot.text.agent_text`), never
Fleetwarden's words, and cut when long. So is a receiver's name an agent typed (a refused
message to no agent) and the reason of a refusal that names it. The headers are ours:
``coder → reviewer:``, ``coder → migrator, task #7:``, ``reviewer → coder, review: approve:``,
``coder → ops refused: WHY``, ``coder → reviewer (delivered after 4 min): “…”``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.text.agent_text import cut, quoted, said
from fleet.ledger.records.peers import MessageRecord
from fleet.names import is_agent_name

NOTICE_CHARS: Final = 1500
"""Characters of a message's text a notice shows; the rest is counted, and in ``msgs``."""
LINE_CHARS: Final = 300
"""Characters of a message's text (or a refusal's reason) on its one line of ``msgs``."""
EXCERPT_CHARS: Final = 120
"""Characters of a message's text a later line about it (its delivery) recalls."""
ARROW: Final = "→"


def agent(name: str) -> str:
    """An agent's name in bold; a name an agent typed that is no agent's, escaped."""
    return f"**{name}**" if is_agent_name(name) else said(name, 40)


def header(record: MessageRecord, verdict: str | None = None) -> str:
    """``coder → reviewer``, ``coder → migrator, task #7``, ``reviewer → coder, review``
    (``review: approve`` with the review's ``verdict``, when it is known)."""
    pair = f"{agent(record.sender)} {ARROW} {agent(record.receiver)}"
    if record.kind == "task":
        return f"{pair}, task #{record.task_id}" if record.task_id is not None else f"{pair}, task"
    if record.kind == "review":
        return f"{pair}, review: {verdict}" if verdict else f"{pair}, review"
    return pair


def sent_notice(record: MessageRecord, verdict: str | None = None) -> str:
    """A message as it is first heard of: who to whom, then its text quoted as the
    sender's (``(delivered)`` after who to whom, when it already was); a review's
    ``verdict`` (``approve, to a human``) after ``review:``, which says where it went."""
    done = " (delivered)" if record.state == "delivered" and not verdict else ""
    more = f": `msgs {record.sender}`"
    text = record.text.strip()
    body = quoted(cut(text, NOTICE_CHARS, more)) if text else "> _(no text)_"
    return f"✉ {header(record, verdict)}{done}:\n{body}"


def refused_notice(record: MessageRecord) -> str:
    """A refused message: who tried whom, and why (which may quote what the agent typed)."""
    why = said(record.why, LINE_CHARS) if record.why else "no reason given"
    return f"⛔ {header(record)} refused: {why}"


def delivered_notice(record: MessageRecord) -> str:
    """A message delivered after a wait: how long it waited, and which it was."""
    waited = ""
    if record.delivered_at is not None:
        waited = f" after {span((record.delivered_at - record.sent_at).total_seconds())}"
    excerpt = said(record.text, EXCERPT_CHARS)
    return f"📬 {header(record)} (delivered{waited}): “{excerpt}”"


def span(seconds: float) -> str:
    """``45 s``, ``4 min``, ``2.5 h``."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def folded(shown: Sequence[str], left_out: int, sender: str, receiver: str | None) -> str:
    """The notices of one pair of agents (``receiver`` ``None``: of one sender's refused
    messages) posted together, and how many earlier ones were folded into this one
    (``msgs`` lists them)."""
    parts = list(shown)
    if left_out:
        plural = "s" if left_out != 1 else ""
        whose = (
            f"refused message{plural} of {agent(sender)}"
            if receiver is None
            else f"message{plural} between {agent(sender)} and {agent(receiver)}"
        )
        parts.insert(0, f"_{left_out} earlier {whose} folded here: `msgs {sender}` lists them_")
    return "\n\n".join(parts)


def message_line(record: MessageRecord) -> str:
    """One message on one line of ``msgs``: ``#12 11-26 22:40 coder → reviewer [message]
    delivered: “…”`` (a refused one with why)."""
    when = f"{record.sent_at:%m-%d %H:%M}"
    pair = f"{agent(record.sender)} {ARROW} {agent(record.receiver)}"
    kind = f"[{record.kind}]"
    if record.task_id is not None:  # the task handed on, or the task whose work was reviewed
        of = " of task" if record.kind == "review" else ""
        kind = f"[{record.kind}{of} #{record.task_id}]"
    state: str = record.state
    if record.state == "refused":
        state = f"refused ({said(record.why, LINE_CHARS) or 'no reason given'})"
    text = said(record.text, LINE_CHARS)
    return f"- #{record.id} {when} {pair} {kind} {state}: “{text}”"


def messages(records: Sequence[MessageRecord], agent_name: str | None, limit: int) -> str:
    """What ``msgs [AGENT]`` answers: the recent messages (``records`` newest first, as the
    ledger reads them), newest last, times in UTC."""
    if not records:
        if agent_name is None:
            return "No agent has sent another a message yet (`fw-msg send PEER TEXT`)."
        return f"{agent(agent_name)} has sent and received no message yet."
    whose = "between agents" if agent_name is None else f"to and from {agent(agent_name)}"
    count = len(records)
    latest = f"the latest {count}" if count >= limit else f"{count}"
    plural = "s" if count != 1 else ""
    head = f"Message{plural} {whose} ({latest}, newest last, times in UTC):"
    lines = [message_line(record) for record in reversed(records)]
    more = ""
    if count >= limit:
        named = f" {agent_name}" if agent_name else ""
        more = f"\n\n`msgs{named} --limit N` shows more."
    return head + "\n\n" + "\n".join(lines) + more
