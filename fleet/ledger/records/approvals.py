"""Approval requests: an agent's ask for the operator's yes or no, and its answer.

An agent's CLI asks before an action its permission mode and rules do not decide (a shell
command, an edit outside what ``edits`` lets pass) or asks the operator a question. Each
ask becomes one :class:`ApprovalRequest`, kept in the ledger (its ``approvals`` table),
shown in the agent's thread with its short :attr:`ApprovalRequest.id`, and answered once:
by an operator or the agent's starter (a reaction, a reply, ``approve ID`` / ``deny ID``),
by its deadline (a timeout, recorded apart from a denial), or closed because the agent or
its CLI ended first.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime


class Decision(enum.StrEnum):
    """What an answer says: allow this once, deny it, or allow it and every later ask of
    the same agent that matches the request's :attr:`ApprovalRequest.pattern`."""

    ALLOW = "allow"
    DENY = "deny"
    ALWAYS = "always"

    @property
    def allows(self) -> bool:
        return self is not Decision.DENY


class ApprovalState(enum.StrEnum):
    """Where a request is: ``open`` until answered; then what ended it."""

    OPEN = "open"
    ALLOWED = "allowed"
    DENIED = "denied"
    TIMED_OUT = "timed_out"  # nobody answered before the deadline: denied, as a timeout
    CLOSED = "closed"  # the agent or its CLI ended, or the CLI withdrew the ask

    @property
    def is_open(self) -> bool:
        return self is ApprovalState.OPEN


class AskKind(enum.StrEnum):
    """A permission to act, or a question the agent asks the operator."""

    PERMISSION = "permission"
    QUESTION = "question"


@dataclass(frozen=True, slots=True)
class Ask:
    """What a CLI asked, in its own terms, before it becomes a request.

    ``native_id`` is the CLI's id of the ask (a control request id, a JSON-RPC id, an
    opencode permission id): with the run it makes the ask unique, so reading the same
    output twice (after a restart) never asks twice. ``tool`` is the tool's name as the
    CLI says it (``Bash``, ``Write``, ``commandExecution``); ``subject`` the argument that
    matters (a command line, a file path); ``detail`` more of it (a short diff, a
    question's options), cut to size by the caller. ``pattern`` is the rule an ``always``
    answer adds for this agent (``Bash(git status)``, ``Edit``); ``None``: the CLI offers
    no way to remember it, and ``always`` counts as allow once."""

    native_id: str
    tool: str
    subject: str
    detail: str = ""
    pattern: str | None = None
    kind: AskKind = AskKind.PERMISSION


def ask_digest(ask: Ask) -> str:
    """The SHA-256 of everything an ask shows the operator: its kind, tool, subject, detail
    and the pattern an ``always`` would teach. An answer binds to this, never to the CLI's
    id of the ask alone: the same id asking something else is another request."""
    shown = [ask.kind.value, ask.tool, ask.subject, ask.detail, ask.pattern]
    text = json.dumps(shown, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One ask, as the ledger keeps it.

    ``id`` is short and unambiguous to type (``approve k7q2``). ``channel`` names the way
    the CLI asked and must be answered (``claude-stream``, ``codex-app-server``, ``hook``);
    ``run_id`` the run that asked (an answer goes to that run only). ``starter`` is who
    started the agent (they may answer besides the operators). ``host`` is where the agent
    runs. Chat places where the request was shown are kept apart
    (:meth:`fleet.ledger.stores.operators.approvals.ApprovalsStore.approval_posts`)."""

    id: str
    agent: str
    run_id: int
    channel: str
    native_id: str
    kind: AskKind
    tool: str
    subject: str
    detail: str
    pattern: str | None
    state: ApprovalState
    asked_at: datetime
    deadline: datetime
    starter: str | None
    host: str
    answered_by: str | None = None
    answered_at: datetime | None = None
    how: str | None = None  # reaction, reply, command, timeout, closed, withdrawn, policy, rule
    reason: str | None = None  # the operator's reason on a deny, why it closed, or an answer
    decision: Decision | None = None
    delivered_at: datetime | None = None  # when the CLI was told the answer
    digest: str | None = None  # of what was asked and shown (:func:`ask_digest`)

    def expired(self, now: datetime) -> bool:
        return self.state.is_open and now >= self.deadline


@dataclass(frozen=True, slots=True)
class LearnedRule:
    """A rule an ``always`` answer taught an agent: who taught it, and when."""

    agent: str
    pattern: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class ApprovalPost:
    """Where a request was shown in chat: answers by reaction or reply find it here, and
    the message is edited to say who answered."""

    request_id: str
    connector: str
    room: str
    thread: str | None
    event_id: str
