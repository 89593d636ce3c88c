"""The words of approvals in chat: the message a request is shown as, what it says once
ended, the one-line notice of a request decided at once, the ``pending`` table, and how a
reaction or a reply reads as an answer. Pure: everything is passed in.

What the agent's CLI asked is the agent's text, never Fleetwarden's words: the tool's name
is one line, escaped (:func:`bot.text.agent_text.escape`), the command line, path or diff goes in
a code block no line can close (:func:`bot.render.fleet.code_block`), and what could hide or
mislead in it is made visible (:mod:`bot.approvals.shown`: code points for invisible
characters and homoglyphs, counted blank runs, long texts cut in the middle with both ends
shown), so what the operator reads is what would run. The pattern ``always`` would teach is
shown whole. Where the medium has buttons, the message offers its answers as
:class:`~connectors.base.Choice` s (:func:`ask_choices`), each a click on a reaction it
already takes.
Mentions in it ping nobody: the message names who it wakes in its intentional mentions,
and Discord is told to allow no ``@everyone``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from bot.approvals.shown import inline_code, one_line, shown_lines, tool_name
from bot.render.fleet import code_block
from bot.text.agent_text import escape
from connectors.base import Choice
from fleet.approvals.budget_asks import is_budget_ask
from fleet.approvals.spend import CHANNEL as SPEND
from fleet.ledger.records.approvals import (
    ApprovalRequest,
    ApprovalState,
    AskKind,
    Decision,
    LearnedRule,
)

_SKIN_AND_SELECTORS: Final = re.compile("[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")
_REACTIONS: Final[dict[str, Decision]] = {
    **dict.fromkeys(("✅", "✔", "☑", "👍", "🆗", "🟢"), Decision.ALLOW),
    **dict.fromkeys(("❌", "✖", "❎", "🚫", "👎", "⛔", "🛑", "🔴"), Decision.DENY),
    **dict.fromkeys(("🔁", "🔂", "♾", "♻"), Decision.ALWAYS),
}
_YES: Final = frozenset({"yes", "y", "ok", "okay", "allow", "approve", "approved", "go", "sure"})
_NO: Final = frozenset({"no", "n", "deny", "denied", "nope", "stop"})
_ALWAYS: Final = frozenset({"always", "allow always", "yes always", "always allow"})


def reaction_decision(key: str) -> Decision | None:
    """The answer a reaction gives (✅ allow once, ❌ deny, 🔁 always, and their common
    variants: ✔️ ☑️ 👍, ✖️ ❎ 🚫 👎, 🔂), or ``None`` for any other reaction."""
    return _REACTIONS.get(_SKIN_AND_SELECTORS.sub("", key.strip()))


def reply_decision(text: str) -> tuple[Decision, str | None] | None:
    """A plain reply as an answer: ``yes``, ``no [reason]`` or ``always`` (any case, a
    trailing ``.`` or ``!`` allowed), with the reason of a ``no``; else ``None``."""
    line = " ".join(text.strip().split())
    if "\n" in text.strip():
        return None
    words = line.lower().rstrip(".!")
    if words in _YES:
        return Decision.ALLOW, None
    if words in _ALWAYS:
        return Decision.ALWAYS, None
    head, _, rest = line.partition(" ")
    if head.lower().rstrip(".!,:;") in _NO:
        reason = rest.strip().lstrip(",:;-— ").strip()
        return Decision.DENY, reason or None
    return None


def _block(text: str, info: str = "text") -> str:
    return code_block(shown_lines(text), info)


def _what(request: ApprovalRequest) -> str:
    """The ask itself: the tool and the argument that matters, inert."""
    tool = escape(tool_name(request.tool))
    if request.kind is AskKind.QUESTION:
        text = f"**{request.agent}** asks you:\n{_block(request.subject)}"
        if request.detail:
            text += f"\n{_block(request.detail)}"
        return text
    text = f"**{request.agent}** asks to use **{tool}**:\n{_block(request.subject)}"
    if request.detail:  # a diff for an edit, or more of the command
        info = "diff" if request.detail.lstrip().startswith(("---", "@@", "+", "-")) else "text"
        text += f"\n{_block(request.detail, info)}"
    return text


def _spend(request: ApprovalRequest) -> str:
    """A run's ask at its cap, in Fleetwarden's own words (its record, not an agent's)."""
    return f"💸 Spend `{request.id}` — **{escape(request.subject)}**"


def ask_message(request: ApprovalRequest, prefix: str, *, threads: bool = True) -> str:
    """The message a request is shown as, with its id and every way to answer it
    (``threads``: the medium has threads and reactions; else only the commands). A run's
    ask at its cap (channel ``spend``) reads apart from every ask of an agent."""
    at = request.deadline.strftime("%H:%M UTC")
    if request.channel == SPEND:
        reply = "" if is_budget_ask(request.agent) else "reply `yes` / `no`; or "
        how = f"React ✅ raise by the offer · ❌ stop; or {reply}" if threads else "Answer with "
        # Fleetwarden's own words (only its spend asks are on this channel): shown as written.
        detail = request.detail.replace("`raise", f"`{prefix}raise")
        detail = detail.replace("`stop", f"`{prefix}stop")
        return f"{_spend(request)}\n{how}{detail} (by {at})"
    if request.kind is AskKind.QUESTION:
        reply = "Reply in this thread, or" if threads else "Answer with"
        how = (
            f"{reply} `{prefix}answer {request.id} TEXT`; `{prefix}deny {request.id} [REASON]` "
            f"declines it. Unanswered by {at}, it is declined."
        )
        return f"❓ Question `{request.id}` — {_what(request)}\n{how}"
    always = (
        f"🔁 always (this agent, {inline_code(request.pattern)})"
        if request.pattern
        else "🔁 always (counts as once here)"
    )
    commands = f"`{prefix}approve {request.id} [always]`, `{prefix}deny {request.id} [REASON]`"
    how = (
        f"React ✅ allow once · ❌ deny · {always}; or reply `yes`, `no [reason]`, "
        f"`always`; or {commands}. Unanswered by {at}, it is denied."
        if threads
        else f"Answer with {commands} ({always.removeprefix('🔁 ')}). "
        f"Unanswered by {at}, it is denied."
    )
    return f"🔐 Approval `{request.id}` — {_what(request)}\n{how}"


PERMISSION_CHOICES: Final = (
    Choice("Approve", "✅", style="primary"),
    Choice("Always", "🔁"),
    Choice("Deny", "❌", style="danger"),
)
"""The buttons of a permission ask: each the reaction it stands for."""
SPEND_CHOICES: Final = (
    Choice("Raise", "✅", style="primary"),
    Choice("Stop", "❌", style="danger"),
)
"""The buttons of a spend ask: raise by the offer, or stop."""


def ask_choices(request: ApprovalRequest) -> tuple[Choice, ...]:
    """The answers ``request``'s message offers as buttons: a question offers none (it
    wants words), a spend ask Raise and Stop, a permission Approve, Always and Deny."""
    if request.channel == SPEND:
        return SPEND_CHOICES
    if request.kind is AskKind.QUESTION:
        return ()
    return PERMISSION_CHOICES


def outcome_line(request: ApprovalRequest) -> str:
    """How a request ended: who answered and how, the timeout, or why it closed."""
    at = request.answered_at.strftime("%H:%M:%S UTC") if request.answered_at else "?"
    reason = f": {escape(request.reason)}" if request.reason else ""
    by = f"{escape(request.answered_by or 'nobody')} ({request.how or 'answer'}) at {at}"
    if request.channel == SPEND:
        return _spend_outcome(request, at, by)
    if request.state is ApprovalState.TIMED_OUT:
        return f"⌛ Timed out at {at}: denied{reason}"
    if request.state is ApprovalState.CLOSED:
        return f"⏹ Closed at {at}{reason}"
    if request.how in ("rule", "policy"):
        verb = "Allowed" if request.state is ApprovalState.ALLOWED else "Denied"
        return f"{'✅' if verb == 'Allowed' else '❌'} {verb} by {request.how} at {at}{reason}"
    if request.state is ApprovalState.DENIED:
        return f"❌ Denied by {by}{reason}"
    if request.kind is AskKind.QUESTION:
        return f"💬 Answered by {by}{reason}"
    if request.decision is Decision.ALWAYS:
        rule = f" — {inline_code(request.pattern)} now passes" if request.pattern else ""
        return f"🔁 Allowed always by {by}{rule}"
    return f"✅ Allowed once by {by}"


def _spend_outcome(request: ApprovalRequest, at: str, by: str) -> str:
    if request.state is ApprovalState.ALLOWED:
        raised = f" ({escape(request.reason)})" if request.reason else " (by the offer)"
        return f"✅ Raised by {by}{raised}: it goes on"
    if request.state is ApprovalState.DENIED:
        return f"⏹ Stopped by {by}"
    if request.state is ApprovalState.TIMED_OUT:
        stops = "it is stopped" in request.detail
        then = "it was stopped" if stops else "it stays frozen (`raise` or `resume` continues it)"
        return f"⌛ Nobody answered by {at}: {then}"
    return f"⏹ Closed at {at}: {escape(request.reason or 'its run ended')}"


def ended_message(request: ApprovalRequest) -> str:
    """What the message of an ended request is edited to: the ask, then how it ended."""
    if request.channel == SPEND:
        return f"{_spend(request)}\n{outcome_line(request)}"
    head = "❓ Question" if request.kind is AskKind.QUESTION else "🔐 Approval"
    return f"{head} `{request.id}` — {_what(request)}\n{outcome_line(request)}"


def decided_notice(request: ApprovalRequest) -> str:
    """One line for a request a rule or the open-request cap decided at once."""
    what = f"**{escape(tool_name(request.tool))}** {inline_code(one_line(request.subject, 120))}"
    if request.state is ApprovalState.ALLOWED:
        return f"✅ **{request.agent}** may use {what}: {escape(request.reason or 'a rule')}"
    return f"❌ **{request.agent}**'s {what} was denied: {escape(request.reason or 'policy')}"


def pending_table(
    requests: Sequence[ApprovalRequest], now: datetime, prefix: str, *, reactions: bool = True
) -> str:
    """The open requests across the fleet: id, agent, tool, subject and age, oldest first;
    the ways to answer them those of the medium (``reactions``: people can react there)."""
    if not requests:
        return "No approval requests are open."
    rows = ["| id | agent | tool | subject | age |", "|---|---|---|---|---|"]
    for r in requests:
        subject = one_line(r.subject, 60)
        tool = "question" if r.kind is AskKind.QUESTION else tool_name(r.tool)
        rows.append(
            f"| `{r.id}` | {r.agent} | {escape(tool)} | {escape(subject)} "
            f"| {_age(now - r.asked_at)} |"
        )
    n = len(requests)
    react = ", or react on the request's message" if reactions else ""
    tail = (
        f"\n\n{n} open. Answer with `{prefix}approve ID [always]` or "
        f"`{prefix}deny ID [REASON]`{react}."
    )
    return "\n".join(rows) + tail


def learned_table(agent: str, rules: Sequence[LearnedRule], prefix: str) -> str:
    """The rules ``always`` answers taught ``agent``: each rule whole, who taught it, when."""
    if not rules:
        return f"**{agent}** has learned no rules: every ask its own rules leave open is asked."
    rows = [f"Rules **{agent}** learned from `always` answers:"]
    for rule in rules:  # a list, not a table: a rule may hold a `|`
        when = rule.added_at.strftime("%Y-%m-%d %H:%M UTC")
        rows.append(f"- {inline_code(rule.pattern)} — taught by {escape(rule.added_by)}, {when}")
    tail = (
        f"\n\nEach one lets **{agent}** skip asking for what it matches, across restarts. "
        f"`{prefix}permissions {agent} forget RULE` (or `all`) forgets it."
    )
    return "\n".join(rows) + tail


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
