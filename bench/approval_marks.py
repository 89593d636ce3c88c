"""Where the approval round trip's time goes (``--marks``): ``perf_counter`` marks on the path
of each leg, taken by wrapping the methods on it for the run (they do what they did; each
wrapper notes when it was entered and when it returned), reported as median offsets from
the leg's t0, Fleetwarden's beside the bare encrypted client's.

Request leg: the ask recorded in the ledger, the alert's send started (rendered, its thread
found), the encrypted ``PUT`` on the wire and returned, the operator's long-poll returning it.
Answer leg: the operator's ``PUT`` of the reaction, the receiver's long-poll returning it
(parsed and decrypted by matrix-nio), the connector handing it over, the approval desk
taking it, the answer recorded, the answer delivered to the CLI's channel.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import nio

from bot.commands.handlers.approvals.answers import ApprovalDesk
from connectors.inbox import Inbox
from connectors.matrix.messages.outbound import Outbound
from fleet.ledger.stores.operators.approvals import ApprovalsStore

Span = tuple[str, float, float]  # what (with whose client, for nio's calls), entered, returned

REQUEST_STAGES = (
    ("ask recorded", "open_approval", "end"),
    ("alert's send starts", "Outbound.send", "start"),
    ("PUT starts", "PUT", "start"),
    ("PUT returned", "PUT", "end"),
)
ANSWER_STAGES = (
    ("reaction's PUT returned", "PUT@operator", "end"),
    ("long-poll returned", "sync", "end"),
    ("handed over", "Inbox.put", "start"),
    ("desk takes it", "ApprovalDesk.react", "start"),
    ("answer recorded", "answer_approval", "end"),
)


@dataclass
class Marks:
    """The spans noted during a run and each leg's t0 and t1."""

    spans: list[Span] = field(default_factory=list)
    legs: list[tuple[str, str, float, float]] = field(default_factory=list)  # party, leg, t0, t1
    receivers: dict[str, str] = field(default_factory=dict)  # party -> its receiving user

    def leg(self, party: str, leg: str, t0: float, t1: float) -> None:
        self.legs.append((party, leg, t0, t1))

    def put(self, who: str, start: float, end: float) -> None:
        self.spans.append((f"PUT@{who}", start, end))

    def report(self, parties: tuple[str, ...]) -> list[str]:
        lines = ["", "where the time goes (--marks): median ms after t0, per leg"]
        for leg, stages in (("request", REQUEST_STAGES), ("answer", ANSWER_STAGES)):
            lines.append(f"{leg}:")
            for party in parties:
                legs = [(t0, t1) for p, lg, t0, t1 in self.legs if p == party and lg == leg]
                if not legs:
                    continue
                cells = []
                for label, name, end in stages:
                    offsets = [
                        (at - t0) * 1000
                        for t0, t1 in legs
                        if (at := self._at(party, name, end, t0, t1)) is not None
                    ]
                    if offsets:
                        cells.append(f"{label} {statistics.median(offsets):.1f}")
                total = statistics.median([(t1 - t0) * 1000 for t0, t1 in legs])
                lines.append(f"  {party:<12} " + " · ".join([*cells, f"done {total:.1f}"]))
        return lines

    def _at(self, party: str, name: str, end: str, t0: float, t1: float) -> float | None:
        """When span ``name`` of ``party``'s leg (t0..t1) was entered or returned: the first
        one entered in the leg; a long-poll's, the last one that returned in it."""
        if name == "PUT":
            name = f"PUT@{party}"
        if name == "sync":
            name = f"sync@{self.receivers.get(party, party)}"
            ends = [e for n, _, e in self.spans if n == name and t0 <= e <= t1 + 0.0005]
            return max(ends) if ends else None
        for n, s, e in self.spans:
            if n == name and t0 - 0.0005 <= s <= t1:
                return s if end == "start" else e
        return None


@contextlib.contextmanager
def installed(marks: Marks, bot: str) -> Iterator[None]:
    """The wrappers in place for the run (``bot``: the bot's user id), taken out after."""
    undo: list[Callable[[], None]] = []

    def wrap(cls: Any, method: str, name: str, who: Callable[[Any], str] | None = None) -> None:
        original = getattr(cls, method)

        @functools.wraps(original)
        async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(self, *args, **kwargs)
            finally:
                label = name if who is None else f"{name}@{who(self)}"
                marks.spans.append((label, start, time.perf_counter()))

        setattr(cls, method, timed)
        undo.append(lambda: setattr(cls, method, original))

    def user(client: Any) -> str:
        found = str(getattr(client, "user_id", ""))
        return "fleetwarden" if found == bot else found.lstrip("@").split(":")[0]

    wrap(ApprovalsStore, "open_approval", "open_approval")
    wrap(ApprovalsStore, "answer_approval", "answer_approval")
    wrap(Outbound, "send", "Outbound.send")
    wrap(ApprovalDesk, "react", "ApprovalDesk.react")
    wrap(nio.AsyncClient, "sync", "sync", user)
    wrap(nio.AsyncClient, "room_send", "PUT", user)
    put = Inbox.put

    def noted(self: Inbox, message: Any) -> None:
        now = time.perf_counter()
        marks.spans.append(("Inbox.put", now, now))
        put(self, message)

    Inbox.put = noted  # type: ignore[method-assign]
    undo.append(lambda: setattr(Inbox, "put", put))
    try:
        yield
    finally:
        for step in reversed(undo):
            step()
