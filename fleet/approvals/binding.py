"""What an answer binds to: an ask as it is recorded and shown, and the digest of that.

The approvals service records each ask as :func:`as_shown` makes it (its detail cut to
size, the pattern an ``always`` would teach normalised, a subject too long to show cut) and
keys the request by the digest of that (:func:`~fleet.ledger.records.approvals.ask_digest`), beside
the CLI's id of the ask. A session protocol keeps the same digest, :func:`shown_digest`,
for each ask it waits on, and applies an answer only when the ask it waits on under that
id has the answer's digest (:func:`request_digest`): CLIs reuse ids (a tool call id per
turn, a JSON-RPC id counted from 0 again), so by the time an answer arrives the id may
stand for another ask, which gets its own request and its own answer.

Pure: asks in, asks and digests out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from fleet.ledger.records.approvals import ApprovalRequest, Ask, AskKind, ask_digest
from fleet.permissions.rules import BadRule, parse_rule, portable_tool

MAX_SUBJECT: Final = 8000
"""Characters of a command line or path an ask may have: a longer one is denied at once, as
no chat message can show it whole (the alert shows its head and tail, cut in the middle)."""
MAX_DETAIL: Final = 4000  # characters of a diff or a question's options kept


def as_shown(ask: Ask) -> Ask:
    """``ask`` as it is recorded and shown: the pattern an ``always`` would teach kept only
    when it is a rule for the ask's own tool matching what was asked (else the exact rule
    of the ask, or none when it cannot be written as one), its detail cut to
    :data:`MAX_DETAIL`, and a subject over :data:`MAX_SUBJECT` cut (such an ask is denied)."""
    shown = replace(ask, detail=ask.detail[:MAX_DETAIL], pattern=_taught(ask))
    if len(ask.subject) > MAX_SUBJECT:
        shown = replace(shown, subject=ask.subject[:MAX_SUBJECT] + "…")
    return shown


def shown_digest(ask: Ask) -> str:
    """The digest the request opened for ``ask`` carries: what an answer to it binds to."""
    return ask_digest(as_shown(ask))


def request_digest(request: ApprovalRequest) -> str:
    """What ``request`` showed, as :func:`~fleet.ledger.records.approvals.ask_digest` (rows from
    before digests were kept get theirs from their columns)."""
    if request.digest is not None:
        return request.digest
    ask = Ask(
        request.native_id,
        request.tool,
        request.subject,
        request.detail,
        request.pattern,
        request.kind,
    )
    return ask_digest(ask)


def _taught(ask: Ask) -> str | None:
    if ask.pattern is None or ask.kind is not AskKind.PERMISSION:
        return None
    try:
        rule = parse_rule(ask.pattern)
        if rule.tool == portable_tool(ask.tool) and rule.matches(ask.tool, ask.subject):
            return str(rule)
    except BadRule:
        pass
    exact = f"{portable_tool(ask.tool)}({ask.subject.strip()})"
    try:
        return str(parse_rule(exact))
    except BadRule:
        return None
