"""Live sessions: one agent process serves every turn, spoken to on its stdin.

A headless CLI that keeps a session on stdin (Claude Code with ``--input-format
stream-json``, ``codex app-server``, ``pi --mode rpc``) runs as one process per session.
Its standard input is the run's FIFO (:mod:`fleet.backends.process`), which outlives a
restart of Fleetwarden; its output goes to the agent's log like any run's. A
:class:`SessionProtocol` is the sans-I/O half: it reads the CLI's output lines and says
what they mean (:data:`Effect`), and makes the lines that carry a turn, an answer to an
ask, an interrupt or a change of permission mode. The driver (:mod:`fleet.sessions.driver`)
does the I/O: it follows the log, hands each line to the protocol, opens approval requests
for its asks, and writes what the protocol makes to the FIFO.

After a restart the driver reads the run's output again from the run's start, with every
write the protocol makes dropped, so the protocol's state (a Codex thread id, the turn in
progress, the asks still pending) is rebuilt from what the CLI wrote; asks already in the
ledger are not asked again (their ``native_id`` and digest are unique per run).

A protocol keeps, for each ask it waits on, the digest of what it asked
(:func:`~fleet.approvals.binding.shown_digest`): an answer carries the digest of the ask it
was given for, and is written only for that ask, never for another the CLI asked since
under the same id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from fleet.ledger.records.approvals import Ask, Decision
from fleet.model import PermissionMode


@dataclass(frozen=True, slots=True)
class Write:
    """A line to write to the CLI's stdin (no line break: the driver adds it)."""

    line: str


@dataclass(frozen=True, slots=True)
class Asked:
    """The CLI asks for a yes or no (or asks a question): open an approval request."""

    ask: Ask


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """The CLI withdrew an ask it made (Claude's ``control_cancel_request``)."""

    native_id: str
    why: str


@dataclass(frozen=True, slots=True)
class Alive:
    """The CLI showed it is alive: ``working`` on a turn, or ``waiting`` for the next."""

    state: Literal["working", "waiting"]


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """A turn is over (its result line was written)."""


@dataclass(frozen=True, slots=True)
class Closing:
    """The session is ending its process (its work is done): a later turn starts a new
    process that resumes the session, rather than going to this one."""


Effect = Write | Asked | Withdrawn | Alive | TurnEnded | Closing


class SessionProtocol(Protocol):
    """One CLI's session protocol, without I/O. Not thread-safe; one per run."""

    @property
    def name(self) -> str:
        """The protocol's name, as :attr:`fleet.model.LaunchPlan.session` says it."""
        ...

    @property
    def busy(self) -> bool:
        """Whether a turn is in progress (a new turn then waits, or steers it)."""
        ...

    def opening(self, prompt: str | None) -> Sequence[Effect]:
        """What to write when the process starts: the handshake, if the protocol has one,
        and the first turn with ``prompt`` (when given)."""
        ...

    def feed(self, line: str) -> Sequence[Effect]:
        """What one line of the CLI's output means. Lines that are not the protocol's
        (a warning on stderr, which shares the log) are ignored."""
        ...

    def turn(self, text: str) -> Sequence[Effect]:
        """A new user turn: written now when idle, or queued (written by a later
        :meth:`feed` when the current turn ends) — or steering the current turn where the
        CLI can. Order is kept."""
        ...

    def answer(
        self, native_id: str, decision: Decision, reason: str | None, *, digest: str
    ) -> Sequence[Effect]:
        """The operator's answer to the ask ``native_id`` whose digest is ``digest``
        (:func:`fleet.approvals.binding.shown_digest`), in the CLI's own terms (a deny
        carries the reason where the CLI can pass one on to the model). Nothing when the
        ask waiting under that id is not that one (withdrawn, answered, or another ask
        under the same id since): an answer never reaches an ask it was not given for."""
        ...

    def interrupt(self) -> Sequence[Effect]:
        """End the current turn, keeping the process and its session."""
        ...

    def set_mode(self, mode: PermissionMode) -> Sequence[Effect] | None:
        """Change the permission mode in-band; ``None`` when the CLI cannot (it then takes
        the new mode from its next process)."""
        ...
