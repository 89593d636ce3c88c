"""Who started a run, read once per run for its approval alerts, and forgotten when it ends
(a forgotten agent's run id may be given to a later run)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from bot.app.phases.fleet.approval_desk import run_starter
from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, AskKind
from fleet.model import AgentState
from fleet.names import AgentName

AT = datetime(2026, 11, 27, tzinfo=UTC)


@dataclass
class _Fleet:
    """What ``run_starter`` uses of the fleet: its runs' stories and its events."""

    triggers: dict[int, str]
    reads: list[int] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    async def story(self, run_id: int) -> Any:
        self.reads.append(run_id)
        start = SimpleNamespace(trigger=self.triggers[run_id])
        return SimpleNamespace(report=SimpleNamespace(start=start))

    @property
    def outputs(self) -> Any:
        return SimpleNamespace(stories=SimpleNamespace(story=self.story))

    async def tell(self, event: FleetEvent) -> None:
        for listener in self.listeners:
            await listener(event)


def _request(run_id: int, agent: str = "coder") -> ApprovalRequest:
    return ApprovalRequest(
        id="k7q2",
        agent=agent,
        run_id=run_id,
        channel="hook",
        native_id="1",
        kind=next(iter(AskKind)),
        tool="Bash",
        subject="ls",
        detail="",
        pattern=None,
        state=next(iter(ApprovalState)),
        asked_at=AT,
        deadline=AT + timedelta(minutes=5),
        starter=None,
        host="local",
    )


async def test_a_runs_starter_is_read_once_and_forgotten_when_the_run_ends() -> None:
    fleet = _Fleet({7: "spawned by @ann:hs on matrix"})
    find = run_starter(fleet)  # type: ignore[arg-type]
    assert await find(_request(7)) == "@ann:hs on matrix"
    assert await find(_request(7)) == "@ann:hs on matrix"
    assert fleet.reads == [7]
    ended = FleetEvent(AgentName("coder"), EventKind.ENDED, AgentState.STOPPED, "", False, 7)
    await fleet.tell(ended)
    # The agent was forgotten and a new one's run took id 7: its own starter is read.
    fleet.triggers[7] = "spawned by @bob:hs on matrix"
    assert await find(replace(_request(7), agent="other")) == "@bob:hs on matrix"
    assert fleet.reads == [7, 7]


async def test_another_event_of_the_run_keeps_its_starter() -> None:
    fleet = _Fleet({3: "spawned by @ann:hs on matrix"})
    find = run_starter(fleet)  # type: ignore[arg-type]
    await find(_request(3))
    stalled = FleetEvent(AgentName("coder"), EventKind.STALLED, AgentState.STALLED, "", False, 3)
    await fleet.tell(stalled)
    await find(_request(3))
    assert fleet.reads == [3]
